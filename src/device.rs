//! The one place that names Burn backends and creates [`Device`]s.
//!
//! Everything else takes `&Device`. wgpu (Vulkan / Metal / DX12) is the default;
//! Flex, Burn's pure-Rust CPU backend, is used when asked for or when no wgpu
//! adapter exists — and the caller is told which one it got, never silently.

use burn::tensor::{Device, DeviceKind, DeviceType};
use serde::{Deserialize, Serialize};

/// Which compute backend a run or a conversion uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The best wgpu adapter (GPU), falling back to the CPU with a warning.
    #[default]
    Wgpu,
    /// Flex on the CPU.
    Cpu,
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wgpu => "wgpu",
            Self::Cpu => "cpu",
        })
    }
}

/// A created device plus a human-readable description of what it is.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The Burn device (no autodiff; call `.autodiff()` for training).
    pub device: Device,
    /// What was asked for.
    pub requested: DeviceChoice,
    /// True when the device is wgpu, false for Flex (CPU).
    pub is_gpu_backend: bool,
    /// e.g. `wgpu: NVIDIA GeForce RTX 3060` or `cpu: Flex (2 threads)`.
    pub description: String,
    /// Set when the request could not be honoured (wgpu asked, no adapter found).
    pub fallback_reason: Option<String>,
}

/// Names of the wgpu adapters this machine offers (empty when none).
///
/// Opens every adapter once; call it once and keep the answer. A panic inside the
/// driver enumeration is caught and treated as "no adapter".
pub fn wgpu_adapter_names() -> Vec<String> {
    let found = std::panic::catch_unwind(|| {
        Device::enumerate(DeviceType::Wgpu)
            .into_vec()
            .into_iter()
            .map(|d| {
                d.identity()
                    .map(|i| i.name)
                    .unwrap_or_else(|| "unnamed wgpu adapter".to_string())
            })
            .collect::<Vec<_>>()
    });
    found.unwrap_or_default()
}

/// The Flex CPU device.
pub fn cpu_device() -> SelectedDevice {
    SelectedDevice {
        device: Device::flex(),
        requested: DeviceChoice::Cpu,
        is_gpu_backend: false,
        description: format!("cpu: Flex ({} threads)", cpu_threads()),
        fallback_reason: None,
    }
}

/// Creates the device for `choice`. wgpu falls back to Flex when no adapter exists,
/// and says so in [`SelectedDevice::fallback_reason`].
pub fn select(choice: DeviceChoice) -> SelectedDevice {
    match choice {
        DeviceChoice::Cpu => cpu_device(),
        DeviceChoice::Wgpu => {
            let names = wgpu_adapter_names();
            match names.first() {
                Some(name) => SelectedDevice {
                    device: Device::wgpu(DeviceKind::DefaultDevice),
                    requested: choice,
                    is_gpu_backend: true,
                    description: format!("wgpu: {name}"),
                    fallback_reason: None,
                },
                None => SelectedDevice {
                    fallback_reason: Some(
                        "no wgpu adapter found (no Vulkan/Metal/DX12 driver?); using the CPU"
                            .to_string(),
                    ),
                    requested: choice,
                    ..cpu_device()
                },
            }
        }
    }
}

/// Creates the wgpu device, or an error when no adapter exists (no fallback).
pub fn require_wgpu() -> Result<SelectedDevice, String> {
    let selected = select(DeviceChoice::Wgpu);
    match selected.fallback_reason {
        Some(reason) => Err(reason),
        None => Ok(selected),
    }
}

/// Number of worker threads the CPU backend uses (rayon's pool size).
pub fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
