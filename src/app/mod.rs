//! The studio: the egui desktop app (see the GUI issue). Placeholder until written.

/// Opens the studio window.
pub fn run_gui() -> anyhow::Result<()> {
    anyhow::bail!("the studio is being written; use the CLI subcommands (photo2anime --help)")
}
