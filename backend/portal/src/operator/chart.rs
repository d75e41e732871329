//! The ingest chart: entries added to the ledger per minute over the last hour, as an SVG
//! drawn on the server. The portal's Content-Security-Policy forbids scripts and inline
//! styles, so the chart is plain SVG elements whose look is set by presentation attributes.

/// Minutes the chart covers.
pub const MINUTES: usize = 60;

/// Entries added per minute, oldest minute first, from the ledger's size at the start and the
/// largest size signed by the end of each minute that had a checkpoint (`growth_since`).
pub fn per_minute(start: i64, minutes: &[(i32, i64)]) -> Vec<u64> {
    let mut ends = vec![None; MINUTES];
    for &(minute, size) in minutes {
        let at = usize::try_from(minute.max(0)).unwrap_or(0).min(MINUTES - 1);
        ends[at] = Some(ends[at].map_or(size, |s: i64| s.max(size)));
    }
    let mut last = start;
    ends.into_iter()
        .map(|end| {
            let end = end.map_or(last, |e| e.max(last));
            let added = u64::try_from(end - last).unwrap_or(0);
            last = end;
            added
        })
        .collect()
}

/// One bar of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    /// The bar's tooltip (`<title>`).
    pub label: String,
}

/// A gridline with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub y: u32,
    pub value: u64,
}

/// Everything the template draws, in SVG user units.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    /// The plot's left edge, right edge, top and baseline.
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub base: u32,
    pub bar_width: u32,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub total: u64,
    pub peak: u64,
    /// Entries per second over the hour.
    pub per_second: String,
}

const BAR: u32 = 18;
const LEFT: u32 = 56;
const TOP: u32 = 12;
const PLOT_HEIGHT: u32 = 240;

/// The smallest of 1, 2, 5 × 10^k at least `n`: the chart's top value.
fn nice_ceiling(n: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for step in [1, 2, 5] {
            if unit.saturating_mul(step) >= n {
                return unit.saturating_mul(step);
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// Lays out the chart of `counts` (per minute, oldest first; [`MINUTES`] of them).
pub fn draw(counts: &[u64]) -> Chart {
    let peak = counts.iter().copied().max().unwrap_or(0);
    let total: u64 = counts.iter().sum();
    let top_value = nice_ceiling(peak.max(1));
    let base = TOP + PLOT_HEIGHT;
    let scale = |v: u64| -> u32 {
        u32::try_from(u128::from(v) * u128::from(PLOT_HEIGHT) / u128::from(top_value))
            .unwrap_or(PLOT_HEIGHT)
    };
    let count = u32::try_from(counts.len()).unwrap_or(0);
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let i = u32::try_from(i).unwrap_or(0);
            let height = scale(n).max(u32::from(n > 0));
            let ago = count - i;
            Bar {
                x: LEFT + i * BAR + 1,
                y: base - height,
                height,
                label: format!(
                    "{n} entr{} in the minute {ago} min ago",
                    if n == 1 { "y" } else { "ies" }
                ),
            }
        })
        .collect();
    let ticks = [0, top_value / 2, top_value]
        .into_iter()
        .map(|value| Tick {
            y: base - scale(value),
            value,
        })
        .collect();
    Chart {
        width: LEFT + count * BAR + 16,
        height: base + 28,
        left: LEFT,
        right: LEFT + count * BAR,
        top: TOP,
        base,
        bar_width: BAR - 3,
        bars,
        ticks,
        total,
        peak,
        per_second: format!("{:.2}", total as f64 / (count.max(1) as f64 * 60.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_becomes_entries_per_minute() {
        // 100 entries before the hour; 130 by minute 2, 130 again at minute 3, 200 at 59.
        let counts = per_minute(100, &[(2, 130), (3, 130), (59, 200), (75, 210)]);
        assert_eq!(counts.len(), MINUTES);
        assert_eq!(counts[2], 30);
        assert_eq!(counts[3], 0);
        // A minute past the end (the clock moved on while reading) counts in the last one.
        assert_eq!(counts[59], 80);
        assert_eq!(counts.iter().sum::<u64>(), 110);
    }

    #[test]
    fn bars_scale_to_a_round_top() {
        let mut counts = vec![0; MINUTES];
        counts[10] = 7;
        counts[59] = 1;
        let chart = draw(&counts);
        assert_eq!(chart.ticks.last().map(|t| t.value), Some(10));
        assert_eq!(chart.bars[10].height, 168);
        assert_eq!(chart.bars[59].height, 24);
        assert_eq!(chart.bars[0].height, 0);
        assert_eq!(chart.bars[10].y + chart.bars[10].height, chart.base);
        assert_eq!((chart.total, chart.peak), (8, 7));
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(1), 1);
    }
}
