//! Live loss plots: every loss term as its own toggleable line, generator and
//! discriminator adversarial terms together, EMA smoothing, optional log scale,
//! linked x axes and cursors, and a marker wherever live values changed.
//!
//! The history is bounded ([`LossHistory`]), so a frame's plotting work does not
//! grow with the length of the run.

use eframe::egui;

use egui::{Color32, Id, Ui};
use egui_plot::{Legend, Line, LineStyle, Plot, VLine};

use crate::app::history::{LossHistory, ema};
use crate::app::state::PlotSettings;

/// Display names in [`LossValues::NAMES`] order.
pub const TERM_LABELS: [&str; 11] = [
    "G total",
    "G adversarial",
    "Content",
    "Style",
    "Colour",
    "TV",
    "D total",
    "D real",
    "D fake",
    "D gray",
    "D smooth",
];

/// Terms of the generator plot.
const GENERATOR_TERMS: [usize; 5] = [0, 2, 3, 4, 5];
/// Terms of the adversarial plot (G and D together).
const ADVERSARIAL_TERMS: [usize; 6] = [1, 6, 7, 8, 9, 10];

/// Live-change markers drawn at most (the newest).
const MAX_MARKERS: usize = 64;

fn term_color(i: usize) -> Color32 {
    const COLORS: [Color32; 11] = [
        Color32::from_rgb(230, 230, 230),
        Color32::from_rgb(255, 120, 80),
        Color32::from_rgb(90, 170, 255),
        Color32::from_rgb(200, 120, 255),
        Color32::from_rgb(255, 200, 60),
        Color32::from_rgb(120, 220, 160),
        Color32::from_rgb(80, 200, 255),
        Color32::from_rgb(160, 230, 90),
        Color32::from_rgb(255, 110, 180),
        Color32::from_rgb(170, 170, 170),
        Color32::from_rgb(230, 160, 110),
    ];
    COLORS[i % COLORS.len()]
}

/// The plots panel's runtime state.
#[derive(Debug, Default)]
pub struct PlotsPanel {
    /// Bounded loss history of the current run.
    pub history: LossHistory,
    /// Steps where new live values took effect.
    pub markers: Vec<usize>,
    /// First adversarial step (init phase end), when there is an init phase.
    pub phase_change: Option<usize>,
    drawn_points: usize,
}

impl PlotsPanel {
    /// Forgets the previous run.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Points handed to the plots in the last frame.
    pub fn drawn_points(&self) -> usize {
        self.drawn_points
    }

    /// Draws the panel in the space given.
    pub fn ui(&mut self, ui: &mut Ui, settings: &mut PlotSettings) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("Losses");
            ui.add(egui::Slider::new(&mut settings.smoothing, 0.0..=0.99).text("Smoothing"))
                .on_hover_text("Exponential moving average of the curves (0 = raw values).");
            ui.checkbox(&mut settings.log_y, "Log scale");
        });
        ui.horizontal_wrapped(|ui| {
            for (i, label) in TERM_LABELS.iter().enumerate() {
                let text = egui::RichText::new(*label).color(term_color(i));
                ui.checkbox(&mut settings.visible[i], text);
            }
        });
        if self.history.total_points() == 0 {
            ui.weak("Loss curves appear with the first training step.");
        }
        let link = Id::unique("p2a-loss-plots");
        let height = ((ui.available_height() - 8.0) / 2.0).max(80.0);
        let mut drawn = 0;
        for (title, terms) in [
            ("Generator", &GENERATOR_TERMS[..]),
            ("Adversarial: G vs D", &ADVERSARIAL_TERMS[..]),
        ] {
            drawn += self.plot(ui, title, terms, settings, link, height);
        }
        self.drawn_points = drawn;
    }

    fn plot(
        &self,
        ui: &mut Ui,
        title: &str,
        terms: &[usize],
        settings: &PlotSettings,
        link: Id,
        height: f32,
    ) -> usize {
        let log = settings.log_y;
        let mut lines = Vec::new();
        for &i in terms {
            let Some(series) = self
                .history
                .series(i)
                .filter(|s| !s.is_empty() && settings.visible[i])
            else {
                continue;
            };
            let mut pts = ema(series.points(), settings.smoothing);
            if log {
                for p in &mut pts {
                    p[1] = p[1].max(1e-9).log10();
                }
            }
            lines.push((i, pts));
        }
        let drawn = lines.iter().map(|(_, p)| p.len()).sum();
        let markers: Vec<usize> = self
            .markers
            .iter()
            .rev()
            .take(MAX_MARKERS)
            .copied()
            .collect();
        let phase_change = self.phase_change;
        let mut plot = Plot::new(("loss-plot", title))
            .height(height)
            .legend(Legend::default())
            .link_axis(link, [true, false])
            .link_cursor(link, [true, false])
            .x_axis_label("step")
            .y_axis_label(if log {
                format!("{title} (log10)")
            } else {
                title.to_string()
            })
            .allow_scroll(false);
        if log {
            plot = plot.y_axis_formatter(|mark, _| axis_value(10f64.powf(mark.value)));
        }
        ui.label(egui::RichText::new(title).strong());
        plot.show(ui, |p| {
            for (i, pts) in lines {
                p.line(
                    Line::new(TERM_LABELS[i], pts)
                        .color(term_color(i))
                        .width(1.5),
                );
            }
            for step in markers {
                p.vline(
                    VLine::new("live change", step as f64)
                        .color(Color32::from_rgb(255, 230, 120))
                        .style(LineStyle::dashed_loose()),
                );
            }
            if let Some(step) = phase_change {
                p.vline(
                    VLine::new("adversarial phase", step as f64).color(Color32::from_gray(140)),
                );
            }
        });
        drawn
    }
}

/// A loss value for a log-scale axis: plain for 0.01..1000, else scientific
/// (TV and style losses sit around 1e-4, the scaled D loss near 1e3).
fn axis_value(v: f64) -> String {
    if v == 0.0 || (0.01..1000.0).contains(&v.abs()) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_values_stay_readable() {
        assert_eq!(axis_value(1e-4), "1e-4");
        assert_eq!(axis_value(0.5), "0.5");
        assert_eq!(axis_value(1.0), "1");
        assert_eq!(axis_value(1500.0), "2e3");
    }
    use crate::train::LossValues;

    /// The engine's name for a display label: "G adversarial" -> "g_adv".
    fn engine_name(label: &str) -> String {
        label
            .to_lowercase()
            .replace("adversarial", "adv")
            .replace("colour", "color")
            .replace(' ', "_")
    }

    /// Line `i` of the plots is labelled `TERM_LABELS[i]` and drawn from
    /// `LossHistory::series(i)`, which is fed `LossValues::as_array()[i]`: each
    /// label must name the engine term at its index, and that term must be the
    /// field `as_array` puts there (checked through the serialized field names).
    #[test]
    fn labels_name_the_engine_terms_in_order() {
        for (i, label) in TERM_LABELS.iter().enumerate() {
            assert_eq!(
                engine_name(label),
                LossValues::NAMES[i],
                "plot line {i} is labelled {label:?}"
            );
        }
        let values = LossValues {
            g_total: Some(0.0),
            g_adv: Some(1.0),
            content: Some(2.0),
            style: Some(3.0),
            color: Some(4.0),
            tv: Some(5.0),
            d_total: Some(6.0),
            d_real: Some(7.0),
            d_fake: Some(8.0),
            d_gray: Some(9.0),
            d_smooth: Some(10.0),
        };
        let json = serde_json::to_value(values).unwrap_or_default();
        for (i, (name, value)) in LossValues::NAMES.iter().zip(values.as_array()).enumerate() {
            let field = json.get(name).and_then(|v| v.as_f64());
            assert_eq!(
                field,
                value.map(f64::from),
                "as_array()[{i}] is not the field {name:?}"
            );
        }
    }

    /// The generator plot holds the generator's own terms, the adversarial plot
    /// G's adversarial term and every D term; each term is in exactly one plot.
    #[test]
    fn each_term_is_plotted_once_in_its_plot() {
        let mut all: Vec<usize> = GENERATOR_TERMS
            .iter()
            .chain(&ADVERSARIAL_TERMS)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..LossValues::NAMES.len()).collect::<Vec<_>>());
        for i in ADVERSARIAL_TERMS {
            let name = LossValues::NAMES[i];
            assert!(
                name == "g_adv" || name.starts_with("d_"),
                "{name} in the adversarial plot"
            );
        }
        for i in GENERATOR_TERMS {
            let name = LossValues::NAMES[i];
            assert!(
                name != "g_adv" && !name.starts_with("d_"),
                "{name} in the generator plot"
            );
        }
    }
}
