//! t
mod testing_support;
