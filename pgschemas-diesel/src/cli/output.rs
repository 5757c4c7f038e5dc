//! Tables, progress bars and plain progress lines.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A text table: a header row, columns separated by two spaces, numbers aligned right.
pub(crate) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a header starting with `>` is aligned right (the `>` is
    /// not shown).
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|h| h.trim_start_matches('>').to_owned())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table, each line indented by `indent`.
    pub(crate) fn write(&self, out: &mut dyn Write, indent: &str) -> io::Result<()> {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::from(indent);
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                let last = i + 1 == columns;
                if self.right[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                } else {
                    s.push_str(cell);
                    if !last {
                        s.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_owned()
        };
        writeln!(out, "{}", line(&self.headers))?;
        for row in &self.rows {
            writeln!(out, "{}", line(row))?;
        }
        Ok(())
    }
}

/// Reports per-schema progress: a progress bar on a terminal (only failures are printed,
/// above the bar), plain lines otherwise.
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub(crate) fn new(progress: bool, message: &'static str) -> Self {
        let bar = progress.then(|| {
            // Hidden until the total is known.
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40.cyan/blue}] {pos}/{len} schemas ({elapsed})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(message);
            bar
        });
        Self { bar }
    }

    pub(crate) fn set_total(&self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            if bar.is_hidden() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
    }

    /// One schema is done: `text` is its line; `important` lines (failures) are shown even
    /// with a bar.
    pub(crate) fn done(&self, out: &mut dyn Write, text: &str, important: bool) -> io::Result<()> {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if important {
                    bar.suspend(|| writeln!(out, "{text}"))
                } else {
                    Ok(())
                }
            }
            None => writeln!(out, "{text}"),
        }
    }

    /// One schema is done, with nothing to print.
    pub(crate) fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Text that is shown in both modes (the bar is hidden while it is written).
    pub(crate) fn print(&self, out: &mut dyn Write, text: &str) -> io::Result<()> {
        match &self.bar {
            Some(bar) => bar.suspend(|| write!(out, "{text}")),
            None => write!(out, "{text}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `41 ms`, `1.2 s`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `1 migration`, `3 migrations`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["schema", ">applied", "error"]);
        t.row(vec!["public".into(), "2".into(), "-".into()]);
        t.row(vec!["tenant1".into(), "10".into(), "boom".into()]);
        let mut out = Vec::new();
        t.write(&mut out, "  ").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  schema   applied  error\n  public         2  -\n  tenant1       10  boom\n"
        );
    }

    #[test]
    fn durations_and_plurals() {
        assert_eq!(duration(Duration::from_millis(41)), "41 ms");
        assert_eq!(duration(Duration::from_millis(1250)), "1.2 s");
        assert_eq!(plural(1, "migration"), "1 migration");
        assert_eq!(plural(0, "migration"), "0 migrations");
    }
}
