//! Reusable widgets.

pub mod compare;
pub mod tiled;
