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
    /// True when the device is wgpu, false for Flex (CPU).
    pub is_gpu_backend: bool,
    /// e.g. `wgpu: NVIDIA GeForce RTX 3060` or `cpu: Flex (2 threads)`.
    pub description: String,
    /// Set when the request could not be honoured (wgpu asked, no adapter found).
    pub fallback_reason: Option<String>,
}

/// One wgpu adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// The adapter's name, e.g. `NVIDIA GeForce RTX 3060` or `llvmpipe (LLVM 15, 256 bits)`.
    pub name: String,
    /// False for software rasterizers (Mesa's lavapipe/llvmpipe), which are far slower
    /// than Flex on the same CPU.
    pub is_hardware: bool,
}

/// The wgpu adapters this machine offers (empty when none).
///
/// Opens every adapter once; call it once and keep the answer. A panic inside the
/// driver enumeration is caught and treated as "no adapter".
pub fn wgpu_adapters() -> Vec<Adapter> {
    let found = std::panic::catch_unwind(|| {
        Device::enumerate(DeviceType::Wgpu)
            .into_vec()
            .into_iter()
            .map(|d| match d.identity() {
                Some(i) => Adapter {
                    is_hardware: i.physical.is_some(),
                    name: i.name,
                },
                None => Adapter {
                    name: "unnamed wgpu adapter".to_string(),
                    is_hardware: false,
                },
            })
            .collect::<Vec<_>>()
    });
    found.unwrap_or_default()
}

/// The Flex CPU device.
pub fn cpu_device() -> SelectedDevice {
    SelectedDevice {
        device: Device::flex(),
        is_gpu_backend: false,
        description: format!("cpu: Flex ({} threads)", cpu_threads()),
        fallback_reason: None,
    }
}

fn wgpu_device(adapter: &Adapter) -> SelectedDevice {
    SelectedDevice {
        device: Device::wgpu(DeviceKind::DefaultDevice),
        is_gpu_backend: true,
        description: if adapter.is_hardware {
            format!("wgpu: {}", adapter.name)
        } else {
            format!("wgpu: {} (software rasterizer)", adapter.name)
        },
        fallback_reason: None,
    }
}

/// Creates the device for `choice`. wgpu falls back to Flex when no hardware adapter
/// exists (none at all, or only a software rasterizer, which is ~60x slower than
/// Flex), and says so in [`SelectedDevice::fallback_reason`].
pub fn select(choice: DeviceChoice) -> SelectedDevice {
    match choice {
        DeviceChoice::Cpu => cpu_device(),
        DeviceChoice::Wgpu => {
            let adapters = wgpu_adapters();
            let reason = match adapters.iter().find(|a| a.is_hardware) {
                Some(adapter) => return wgpu_device(adapter),
                None => match adapters.first() {
                    Some(software) => format!(
                        "only a software wgpu adapter was found ({}); using Flex on the CPU, which is much faster",
                        software.name
                    ),
                    None => "no wgpu adapter found (no Vulkan/Metal/DX12 driver?); using the CPU"
                        .to_string(),
                },
            };
            SelectedDevice {
                fallback_reason: Some(reason),
                ..cpu_device()
            }
        }
    }
}

/// Creates a wgpu device on any adapter, software ones included, or says why not
/// (no fallback). Used by the wgpu tests, which run on Mesa's lavapipe in CI.
pub fn require_wgpu() -> Result<SelectedDevice, String> {
    match wgpu_adapters().first() {
        Some(adapter) => Ok(wgpu_device(adapter)),
        None => Err("no wgpu adapter found (install mesa-vulkan-drivers for lavapipe)".to_string()),
    }
}

/// Number of worker threads the CPU backend uses (rayon's pool size).
pub fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The device an artist picked in the studio (persisted with its settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSetting {
    /// A wgpu adapter; `None` lets wgpu pick the default one.
    Gpu {
        /// Adapter name as wgpu reports it.
        adapter: Option<String>,
    },
    /// Flex on the CPU.
    Cpu,
}

impl Default for DeviceSetting {
    fn default() -> Self {
        Self::Gpu { adapter: None }
    }
}

impl DeviceSetting {
    /// Short label for menus.
    pub fn label(&self) -> String {
        match self {
            Self::Gpu {
                adapter: Some(name),
            } => format!("GPU: {name}"),
            Self::Gpu { adapter: None } => "GPU: default adapter".to_string(),
            Self::Cpu => "CPU (Flex)".to_string(),
        }
    }

    /// The setting to use once the adapters are known: the first hardware adapter
    /// for "default GPU", or the CPU when there is only a software rasterizer
    /// (lavapipe trains far slower than Flex). Explicit choices are kept.
    pub fn resolved_default(&self, adapters: &[Adapter]) -> Self {
        match self {
            Self::Gpu { adapter: None } => match adapters.iter().find(|a| a.is_hardware) {
                Some(gpu) => Self::Gpu {
                    adapter: Some(gpu.name.clone()),
                },
                None => Self::Cpu,
            },
            other => other.clone(),
        }
    }

    /// Creates the device this setting names. A named adapter is looked up among
    /// wgpu's adapters; when it is absent, wgpu's best adapter (or the CPU) is used
    /// and [`SelectedDevice::fallback_reason`] says why.
    pub fn create(&self) -> SelectedDevice {
        match self {
            Self::Cpu => select(DeviceChoice::Cpu),
            Self::Gpu { adapter: None } => select(DeviceChoice::Wgpu),
            Self::Gpu {
                adapter: Some(name),
            } => match wgpu_device_named(name) {
                Some(selected) => selected,
                None => {
                    let mut d = select(DeviceChoice::Wgpu);
                    let why = d
                        .fallback_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    d.fallback_reason = Some(format!(
                        "adapter '{name}' not found; using {}{why}",
                        d.description
                    ));
                    d
                }
            },
        }
    }
}

/// The wgpu device of the adapter called `name`, if this machine has it. A panic
/// inside the driver enumeration counts as "not found".
fn wgpu_device_named(name: &str) -> Option<SelectedDevice> {
    let found = std::panic::catch_unwind(|| {
        Device::enumerate(DeviceType::Wgpu)
            .into_vec()
            .into_iter()
            .find(|d| d.identity().is_some_and(|i| i.name == name))
    })
    .ok()
    .flatten()?;
    Some(SelectedDevice {
        device: found,
        is_gpu_backend: true,
        description: format!("wgpu: {name}"),
        fallback_reason: None,
    })
}
