//! What the studio remembers between sessions ([`Settings`], saved by eframe's
//! persistence) and the options a launcher passes in ([`AppOptions`], never saved).
//!
//! Runtime state (scans, runs, textures, results) lives in the panels, in
//! [`super::run_state`] and in [`super::studio::StudioApp`]; nothing here holds a
//! handle, a texture or a thread.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::worker::FolderRole;
use crate::device::DeviceSetting;
use crate::train::{Duration, LiveParams, TrainConfig};
use crate::video::ffmpeg::{VideoCodec, VideoQuality};

/// Everything the studio remembers. Every struct here is `#[serde(default)]`:
/// unknown or missing fields take their defaults, so settings written by an older
/// (or newer) version still load instead of being replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The next run's configuration: folders, hyperparameters, VGG file. The same
    /// type the CLI builds and every run saves as `config.json`.
    pub train: TrainConfig,
    /// The run length in both units (the selected one is also in `train.duration`).
    pub lengths: RunLengths,
    /// Compute device for training and conversion.
    pub device: DeviceSetting,
    /// Loss plot options.
    pub plots: PlotSettings,
    /// Convert panel options.
    pub convert: ConvertSettings,
    /// The view shown.
    pub tab: Tab,
}

impl Default for Settings {
    fn default() -> Self {
        let train = TrainConfig::quick_cpu();
        Self {
            lengths: RunLengths::of(train.duration),
            train,
            device: DeviceSetting::default(),
            plots: PlotSettings::default(),
            convert: ConvertSettings::default(),
            tab: Tab::Training,
        }
    }
}

impl Settings {
    /// The folder of a training role.
    pub fn folder(&self, role: FolderRole) -> &Path {
        match role {
            FolderRole::Photos => &self.train.photos_dir,
            FolderRole::Style => &self.train.style_dir,
        }
    }

    /// Sets the folder of a training role.
    pub fn set_folder(&mut self, role: FolderRole, dir: PathBuf) {
        match role {
            FolderRole::Photos => self.train.photos_dir = dir,
            FolderRole::Style => self.train.style_dir = dir,
        }
    }

    /// Replaces folders that no longer exist by the demo folders; returns what was replaced.
    pub fn repair_missing_folders(&mut self) -> Vec<String> {
        let demo = TrainConfig::default();
        let mut notes = Vec::new();
        for (dir, fallback, what) in [
            (&mut self.train.photos_dir, demo.photos_dir, "photo"),
            (&mut self.train.style_dir, demo.style_dir, "style"),
        ] {
            if !dir.is_dir() && fallback.is_dir() {
                notes.push(format!(
                    "The remembered {what} folder {} no longer exists; using the demo folder.",
                    dir.display()
                ));
                *dir = fallback;
            }
        }
        notes
    }

    /// Takes a resumed run's configuration (with the live values of the checkpoint
    /// resumed from) as the draft.
    pub fn adopt_run(&mut self, config: &TrainConfig, live: LiveParams) {
        self.train = TrainConfig {
            preset: live.matching_preset(),
            live,
            ..config.clone()
        };
        self.lengths.remember(config.duration);
    }

    /// Parses settings text as eframe stores it (RON).
    pub fn from_saved(text: &str) -> Result<Self, ron::error::SpannedError> {
        ron::from_str(text)
    }

    /// Loads the settings eframe saved. A saved text that cannot be read is not
    /// discarded: it is copied to `keep_aside` and the returned note says where, so
    /// nothing the artist set is lost without a word.
    pub fn load(saved: Option<String>, keep_aside: &Path) -> (Self, Option<String>) {
        let Some(text) = saved else {
            return (Self::default(), None);
        };
        match Self::from_saved(&text) {
            Ok(settings) => (settings, None),
            Err(e) => {
                let note = match crate::fsx::write_atomic_str(keep_aside, &text) {
                    Ok(()) => format!(
                        "Saved settings could not be read ({e}); defaults are used and the old settings are kept in {}",
                        keep_aside.display()
                    ),
                    Err(io) => format!(
                        "Saved settings could not be read ({e}), and keeping a copy in {} failed ({io}); defaults are used",
                        keep_aside.display()
                    ),
                };
                (Self::default(), Some(note))
            }
        }
    }
}

/// The unit a run's length is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// Whole epochs.
    Epochs,
    /// Optimisation steps.
    Steps,
}

/// Run lengths in both units, so switching the unit back keeps what was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunLengths {
    /// Length in epochs.
    pub epochs: usize,
    /// Length in steps.
    pub steps: usize,
}

impl Default for RunLengths {
    fn default() -> Self {
        Self::of(TrainConfig::quick_cpu().duration)
    }
}

impl RunLengths {
    /// Lengths with `duration` in its unit and the recipe's epochs / 300 steps in the other.
    pub fn of(duration: Duration) -> Self {
        let mut lengths = Self {
            epochs: crate::train::config::recipe::EPOCHS,
            steps: 300,
        };
        lengths.remember(duration);
        lengths
    }

    /// Records `duration` in its unit.
    pub fn remember(&mut self, duration: Duration) {
        match duration {
            Duration::Epochs(e) => self.epochs = e,
            Duration::Steps(s) => self.steps = s,
        }
    }
}

/// The main views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    /// Photo and style folders.
    Dataset,
    /// Controls, loss plots and the sample timeline.
    #[default]
    Training,
    /// Converting photos with a model.
    Convert,
}

/// Loss plot options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlotSettings {
    /// EMA smoothing factor in `[0, 0.99]`; 0 shows raw values.
    pub smoothing: f64,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Visibility per loss term, in [`crate::train::LossValues::NAMES`] order.
    pub visible: [bool; 11],
}

impl Default for PlotSettings {
    fn default() -> Self {
        Self {
            smoothing: 0.6,
            log_y: true,
            visible: [true; 11],
        }
    }
}

/// Convert panel options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConvertSettings {
    /// Model files imported earlier (.pt, .safetensors, .bpk, model folders).
    pub imported: Vec<PathBuf>,
    /// Scale outputs to the input's mean brightness.
    pub match_luminance: bool,
    /// Keep the photo's colours (the output's luminance, the photo's chroma).
    pub keep_colors: bool,
    /// Style strength, 0-100 %.
    pub strength_percent: u32,
    /// Folder last used in an open or save dialog.
    pub last_dir: Option<PathBuf>,
    /// Codec of converted clips.
    pub video_codec: VideoCodec,
    /// Quality preset of converted clips.
    pub video_quality: VideoQuality,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        Self {
            imported: Vec::new(),
            match_luminance: false,
            keep_colors: false,
            strength_percent: 100,
            last_dir: None,
            video_codec: VideoCodec::default(),
            video_quality: VideoQuality::default(),
        }
    }
}

impl ConvertSettings {
    /// The style choices requests carry.
    pub fn style(&self) -> crate::convert::finish::StyleChoice {
        crate::convert::finish::StyleChoice {
            strength_percent: self.strength_percent.min(100),
            keep_colors: self.keep_colors,
            match_luminance: self.match_luminance,
        }
    }

    /// Remembers an imported model (most recent first, no duplicates).
    pub fn remember_import(&mut self, path: &Path) {
        self.imported.retain(|p| p != path);
        self.imported.insert(0, path.to_path_buf());
        self.imported.truncate(12);
    }
}

/// Options chosen by whoever launches the studio; never persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct AppOptions {
    /// Where runs are written and models are listed (`./checkpoints` in the app).
    pub checkpoints_dir: PathBuf,
    /// Use the CPU only and never enumerate wgpu adapters (tests, machines without a GPU driver).
    pub force_cpu: bool,
    /// Photos / model files to open at start, as if dropped on the window.
    pub open: Vec<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            checkpoints_dir: crate::checkpoints_dir(),
            force_cpu: false,
            open: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings saved before a field existed still load, keeping what they have:
    /// a new field never wipes an artist's folders or sliders.
    #[test]
    fn settings_without_newer_fields_still_load() {
        let saved = r#"(train: (photos_dir: "/my/photos", image_size: 192, live: (w_color: 12.5)), tab: Convert)"#;
        let s = Settings::from_saved(saved).unwrap();
        assert_eq!(s.train.photos_dir, PathBuf::from("/my/photos"));
        assert_eq!(s.train.image_size, 192);
        assert_eq!(s.train.live.w_color, 12.5);
        assert_eq!(s.train.live.lr_g, LiveParams::default().lr_g);
        assert_eq!(s.train.batch_size, TrainConfig::default().batch_size);
        assert_eq!(s.tab, Tab::Convert);
        assert_eq!(s.plots, PlotSettings::default());
    }

    /// The saved text round-trips through eframe's format.
    #[test]
    fn settings_round_trip() {
        let mut s = Settings::default();
        s.train.image_size = 96;
        s.device = DeviceSetting::Cpu;
        let text = ron::to_string(&s).unwrap();
        assert_eq!(Settings::from_saved(&text).unwrap(), s);
    }

    /// Unreadable settings are reported and kept aside, not overwritten.
    #[test]
    fn unreadable_settings_are_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let aside = dir.path().join("settings-unreadable.ron");
        let (s, note) = Settings::load(Some("(train: (image_size: \"big\"".into()), &aside);
        assert_eq!(s, Settings::default());
        let note = note.unwrap();
        assert!(note.contains("settings-unreadable.ron"), "{note}");
        assert_eq!(
            std::fs::read_to_string(&aside).unwrap(),
            "(train: (image_size: \"big\""
        );
    }
}
