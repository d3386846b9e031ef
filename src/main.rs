//! `photo2anime`: no arguments opens the studio; subcommands run the headless CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Burn materialises restored optimizer state on `Device::default()` (wgpu first)
    // before moving it to the parameters' device. Pin that default to the CPU so a
    // machine without a Vulkan/Metal/DX12 adapter can still resume a run. Every
    // device we compute on is created explicitly in `device.rs`.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: first statement of main, before any thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    // Before any thread: lets Flex reuse its large buffers (see alloc_tuning.rs).
    let tuned = photo2anime::alloc_tuning::tune_allocator();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if !tuned {
        log::debug!("allocator tuning not applied (not glibc, or refused)");
    }
    photo2anime::cli::main()
}
