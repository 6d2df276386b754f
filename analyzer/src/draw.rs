//! Drawing the plot: colours, the time axis, the lines of the overview shown, the
//! checkpoints and the event markers.

use egui::Color32;
use egui_plot::{
    GridInput, GridMark, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotUi, Points,
    VLine,
};
use openmosix_store::{EventRow, Time};

use crate::lines::Series;
use crate::plot::PlotState;
use crate::{HIGH_LOAD, Overview, time_text};

/// Red: load above [`HIGH_LOAD`].
pub const RED: Color32 = Color32::from_rgb(0xf0, 0x20, 0x20);
/// Blue: checkpoints.
pub const BLUE: Color32 = Color32::from_rgb(0x30, 0x60, 0xff);

/// Node colours: no red (high load) and no blue (checkpoints).
const PALETTE: [Color32; 10] = [
    Color32::from_rgb(0x2c, 0xa0, 0x2c),
    Color32::from_rgb(0xff, 0x9f, 0x1e),
    Color32::from_rgb(0x17, 0xbe, 0xcf),
    Color32::from_rgb(0xb4, 0x87, 0xdd),
    Color32::from_rgb(0xbc, 0xbd, 0x22),
    Color32::from_rgb(0xc0, 0x86, 0x6b),
    Color32::from_rgb(0xe3, 0x77, 0xc2),
    Color32::from_rgb(0xa0, 0xa0, 0xa0),
    Color32::from_rgb(0x8c, 0xd8, 0x8c),
    Color32::from_rgb(0xff, 0xd0, 0x70),
];

/// The colour of node `index` (its place in the node list).
pub fn node_color(index: usize) -> Color32 {
    PALETTE[index % PALETTE.len()]
}

/// Grid marks at round times (seconds, minutes, hours, days).
#[allow(clippy::needless_pass_by_value)] // egui_plot's grid spacer signature
fn time_grid(input: GridInput) -> Vec<GridMark> {
    const STEPS: [f64; 16] = [
        1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0, 86400.0, 172_800.0, 604_800.0,
    ];
    let (lo, hi) = input.bounds;
    let min_step = input.base_step_size * 8.0;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| *s >= min_step)
        .unwrap_or_else(|| (min_step / 86400.0).ceil() * 86400.0);
    let mut out = Vec::new();
    let mut t = (lo / step).floor() * step;
    while t <= hi && out.len() < 1000 {
        // Every fifth line a bit thicker.
        let big = (t / (step * 5.0)).fract().abs() < 1e-9;
        out.push(GridMark {
            value: t,
            step_size: if big { step * 5.0 } else { step },
        });
        t += step;
    }
    out
}

/// Axis text of a time: `HH:MM` (with seconds or the date when that says more).
pub(crate) fn axis_time(mark: GridMark) -> String {
    let t = mark.value.round() as Time;
    let full = openmosix_store::utc_text(t);
    // "YYYY-mm-dd HH:MM:SS UTC"
    if mark.step_size >= 86400.0 {
        full[5..10].to_owned()
    } else if mark.step_size < 60.0 {
        full[11..19].to_owned()
    } else if t.rem_euclid(86400) == 0 {
        format!("{}\n{}", &full[11..16], &full[5..10])
    } else {
        full[11..16].to_owned()
    }
}

impl crate::Analyzer {
    /// Draws the plot of the current overview; records the range shown and a time
    /// right-clicked.
    pub(crate) fn draw_plot(&mut self, ui: &mut egui::Ui) {
        let overview = self.overview;
        let st = &self.plot;
        let pending = st.pending;
        let resp = plot(st, overview).show(ui, |pu| {
            if let Some((lo, hi)) = pending {
                pu.set_plot_bounds_x(lo..=hi);
            }
            // Keep fitting y to the data while x is panned and zoomed.
            let auto = pu.auto_bounds();
            if !auto.y {
                pu.set_auto_bounds([auto.x, true]);
            }
            for s in &st.series {
                draw_series(pu, s, overview);
            }
            draw_marks(pu, st);
        });
        if resp.response.secondary_clicked()
            && let Some(pos) = resp.response.interact_pointer_pos()
        {
            let t = resp.transform.value_from_position(pos).x.round() as Time;
            self.history_request = Some(t);
        }
        let b = resp.transform.bounds();
        let visible = (b.min()[0], b.max()[0]);
        self.plot.pending = None;
        self.plot.visible = Some(visible);
        self.plot.width = resp.response.rect.width();
    }
}

/// The plot of `overview`, before its contents: axes, zoom, and the hover texts.
fn plot(st: &PlotState, overview: Overview) -> Plot<'_> {
    let unit = match overview {
        Overview::Load => "load (100 = one busy CPU)",
        Overview::Memory => "MiB",
    };
    let events = st.data.as_ref().map_or(&[][..], |d| d.events.as_slice());
    let (home_lo, home_hi) = st.home;
    let plot = Plot::new(("openmosixanalyzer plot", st.generation, overview))
        .legend(Legend::default())
        .default_x_bounds(home_lo, home_hi)
        .include_y(0.0)
        .allow_zoom([true, false])
        .allow_drag([true, false])
        .allow_scroll([true, false])
        .x_grid_spacer(time_grid)
        .x_axis_formatter(|m, _| axis_time(m))
        .y_axis_label(unit)
        .label_formatter(move |pos| hover_text(pos, events, unit));
    match overview {
        Overview::Load => plot.include_y(100.0),
        Overview::Memory => plot,
    }
}

/// What hovering at `pos` shows: the event or the line point near it, or the time.
fn hover_text(pos: &HoverPosition<'_>, events: &[EventRow], unit: &str) -> Option<String> {
    match pos {
        HoverPosition::NearDataPoint {
            plot_name,
            position,
            index,
        } => {
            if *plot_name == "events" {
                events.get(*index).map(|e| {
                    format!(
                        "{}\nnode {}: {} — {}",
                        time_text(e.time_ms.div_euclid(1000)),
                        e.node,
                        e.kind,
                        e.text
                    )
                })
            } else {
                Some(format!(
                    "{plot_name}\n{}\n{:.0} {unit}",
                    time_text(position.x.round() as Time),
                    position.y
                ))
            }
        }
        HoverPosition::Elsewhere { position } => Some(format!(
            "{}\nright-click: show processes at this time",
            time_text(position.x.round() as Time)
        )),
    }
}

/// The lines of one node: load (red above [`HIGH_LOAD`]), or mem, rmem dashed and tmem
/// dotted.
fn draw_series<'a>(pu: &mut PlotUi<'a>, s: &'a Series, overview: Overview) {
    let name = format!("node {}", s.node);
    for line in &s.main {
        pu.line(
            Line::new(name.clone(), line.as_slice())
                .color(s.color)
                .width(1.5),
        );
    }
    match overview {
        Overview::Load => {
            for line in &s.second {
                pu.line(
                    Line::new(format!("load > {HIGH_LOAD}"), line.as_slice())
                        .color(RED)
                        .width(2.0)
                        .allow_hover(false),
                );
            }
        }
        Overview::Memory => {
            let dashed = (&s.second, "rmem (dashed)", 0.8, LineStyle::dashed_dense());
            let dotted = (&s.third, "tmem (dotted)", 0.6, LineStyle::dotted_loose());
            for (lines, name, gamma, style) in [dashed, dotted] {
                for line in lines {
                    pu.line(
                        Line::new(name, line.as_slice())
                            .color(s.color.gamma_multiply(gamma))
                            .style(style)
                            .width(1.0),
                    );
                }
            }
        }
    }
}

/// The checkpoints (blue vertical lines) and the event markers.
fn draw_marks<'a>(pu: &mut PlotUi<'a>, st: &'a PlotState) {
    if let Some(d) = &st.data {
        for c in &d.checkpoints {
            pu.add(
                VLine::new("checkpoint", c.time_ms as f64 / 1000.0)
                    .color(BLUE)
                    .width(1.5),
            );
        }
    }
    if !st.markers.is_empty() {
        pu.add(
            Points::new("events", st.markers.as_slice())
                .shape(MarkerShape::Diamond)
                .radius(5.0)
                .filled(true)
                .color(Color32::from_rgb(0xff, 0xff, 0xff)),
        );
    }
}
