//! The mio shell (placeholder).
