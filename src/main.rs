//! `photo2anime`: no arguments opens the studio; subcommands run the headless CLI.

// Release builds on Windows are GUI programs, so no console window opens behind the
// studio; the CLI then writes to the console it was started from
// (`attach_parent_console`).
#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(all(windows, not(debug_assertions)))]
    attach_parent_console();
    // Burn materialises restored optimizer state on `Device::default()` (wgpu first)
    // before moving it to the parameters' device. Pin that default to the CPU so a
    // machine without a Vulkan/Metal/DX12 adapter can still resume a run. Every
    // device we compute on is created explicitly in `device.rs`.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: at the start of main, before any thread exists.
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

/// Lets `photo2anime convert …` typed in a terminal print there, although the release
/// binary is a GUI-subsystem program (started from Explorer there is no parent console
/// and the call does nothing).
#[cfg(all(windows, not(debug_assertions)))]
fn attach_parent_console() {
    #[link(name = "kernel32")]
    unsafe extern "system" {
        /// kernel32: `BOOL AttachConsole(DWORD dwProcessId)`.
        fn AttachConsole(process_id: u32) -> i32;
    }
    /// `ATTACH_PARENT_PROCESS`: `(DWORD)-1`.
    const ATTACH_PARENT_PROCESS: u32 = u32::MAX;
    // SAFETY: the declaration matches kernel32's signature (DWORD in, BOOL out, stdcall
    // = "system"); the call takes a plain integer, touches no memory of ours, and fails
    // harmlessly (returns 0) when there is no parent console or one is attached. It
    // runs first in main, before anything has written to the standard handles.
    let _attached = unsafe { AttachConsole(ATTACH_PARENT_PROCESS) };
}
