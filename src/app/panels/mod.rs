//! One panel per file. Panels draw from their own runtime state plus the settings,
//! and push [`super::command::UiCommand`]s; they never touch the worker directly.

pub mod convert;
pub mod dataset;
pub mod plots;
pub mod samples;
pub mod training;
