//! `index.html`: the bundle's human summary, for a customs officer who opens the zip and
//! double-clicks. It loads nothing from the network (inline CSS, charts as inline SVG drawn
//! here, no scripts) and prints on paper.
//!
//! It is made from the manifest and the table rows alone, and deterministically, so the
//! verifier makes it again from the bundle's signed entries and `documents.csv` and compares:
//! the summary cannot say what the data does not. Memory stays bounded: counts per port, day
//! and state, and at most [`CUSTOMS_LISTED`] customs events listed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::format::Manifest;
use crate::tables::{DocumentRow, EventRow, TransitionRow};

/// How many customs events the page lists; the others are counted ("and N more").
pub const CUSTOMS_LISTED: usize = 200;

/// A customs event as the page lists it.
#[derive(Debug, Clone)]
struct CustomsLine {
    index: u64,
    time: String,
    code: String,
    document: String,
    container: String,
    location: String,
    actor: String,
}

/// The counts the page shows, gathered row by row.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Per port: documents loaded there, documents discharged there.
    ports: BTreeMap<String, (u64, u64)>,
    states: BTreeMap<String, u64>,
    /// Per UTC day: transitions, events.
    days: BTreeMap<String, (u64, u64)>,
    customs: Vec<CustomsLine>,
    /// Customs events per code (DECLARED, HOLD, RELEASE).
    customs_codes: BTreeMap<String, u64>,
    customs_total: u64,
}

/// The UTC day of a ledger time (`2026-03-01T10:00:00.000Z` → `2026-03-01`).
fn day(time: &str) -> String {
    time.get(..10).unwrap_or(time).to_owned()
}

impl Report {
    pub(crate) fn transition(&mut self, row: &TransitionRow) {
        self.transition_on(row.time.get(..10).unwrap_or(&row.time));
    }

    /// A transition signed on `day` (`YYYY-MM-DD`, as [`day`] makes it).
    pub(crate) fn transition_on(&mut self, day: &str) {
        // Most entries fall on a day already counted: no key is made for them.
        match self.days.get_mut(day) {
            Some(counts) => counts.0 += 1,
            None => {
                self.days.entry(day.to_owned()).or_default().0 += 1;
            }
        }
    }

    pub(crate) fn event(&mut self, row: &EventRow) {
        self.days.entry(day(&row.time)).or_default().1 += 1;
        if row.event_kind == "CUSTOMS" {
            self.customs_total += 1;
            *self
                .customs_codes
                .entry(row.event_code.clone())
                .or_default() += 1;
            if self.customs.len() < CUSTOMS_LISTED {
                self.customs.push(CustomsLine {
                    index: row.ledger_index,
                    time: row.time.clone(),
                    code: row.event_code.clone(),
                    document: row.document.clone(),
                    container: row.container.clone(),
                    location: row.location.clone(),
                    actor: row.actor.clone(),
                });
            }
        }
    }

    pub(crate) fn document(&mut self, row: &DocumentRow) {
        self.ports.entry(row.port_of_loading.clone()).or_default().0 += 1;
        self.ports
            .entry(row.port_of_discharge.clone())
            .or_default()
            .1 += 1;
        *self.states.entry(row.state.clone()).or_default() += 1;
    }

    /// The page, for the export `manifest` describes (its `files` are not used: the page is
    /// one of them).
    pub(crate) fn render(&self, m: &Manifest) -> String {
        let mut h = String::with_capacity(32 * 1024);
        let last = m.range.to.saturating_sub(1);
        let range = if m.range.to > m.range.from {
            format!("{} to {}", group(m.range.from), group(last))
        } else {
            "empty".to_owned()
        };
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"{format}\">\n\
             <title>Customs export for {auth}: ledger entries {range}</title>\n\
             <style>{STYLE}</style>\n</head>\n<body>\n",
            format = esc(&m.format),
            auth = esc(&m.authority),
        );
        let _ = write!(
            h,
            "<header>\n<p class=\"kicker\">Lading customs export</p>\n\
             <h1>Customs export for {auth}</h1>\n\
             <p class=\"lead\">Ledger indexes {range}, created {created}, signed by key <code>{exporter}</code>.</p>\n\
             </header>\n<main>\n",
            auth = esc(&m.authority),
            created = esc(&m.created_at),
            exporter = esc(&m.exporter),
        );

        // The summary table.
        let customs = |code: &str| self.customs_codes.get(code).copied().unwrap_or(0);
        let previous = match &m.previous {
            Some(p) => format!(
                "entries {} to {} (manifest SHA-256 <code class=\"hash\">{}</code>)",
                group(p.range.from),
                group(p.range.to.saturating_sub(1)),
                esc(&p.manifest_sha256)
            ),
            None => "none: this is the first export of the series".to_owned(),
        };
        h.push_str("<section aria-labelledby=\"summary\">\n<h2 id=\"summary\">Summary</h2>\n<table class=\"summary\">\n<tbody>\n");
        let rows: [(&str, &str, String); 14] = [
            ("authority", "Customs authority", esc(&m.authority)),
            (
                "range",
                "Ledger range",
                format!(
                    "indexes {range} <span class=\"muted\">({} ledger entr{}; those {} is entitled to are in this export)</span>",
                    group(m.range.to.saturating_sub(m.range.from)),
                    if m.range.to.saturating_sub(m.range.from) == 1 { "y" } else { "ies" },
                    esc(&m.authority)
                ),
            ),
            ("created", "Created", esc(&m.created_at)),
            ("exporter", "Signed by key", format!("<code>{}</code>", esc(&m.exporter))),
            (
                "checkpoint",
                "Registry checkpoint",
                format!(
                    "ledger size {}, block size {}, root <code class=\"hash\">{}</code>",
                    group(m.checkpoint.size),
                    group(m.checkpoint.block_size),
                    esc(&m.checkpoint.root)
                ),
            ),
            ("previous", "Previous export", previous),
            ("entries", "Entries", group(m.counts.entries)),
            ("transitions", "Transitions of title", group(m.counts.transitions)),
            ("events", "Shipment events", group(m.counts.events)),
            ("documents", "Documents", group(m.counts.documents)),
            ("customs", "Customs events", group(self.customs_total)),
            ("holds", "Holds", group(customs("HOLD"))),
            ("releases", "Releases", group(customs("RELEASE"))),
            ("blocks", "Proof blocks", group(m.counts.blocks)),
        ];
        for (id, label, value) in rows {
            let _ = writeln!(
                h,
                "<tr><th scope=\"row\">{label}</th><td id=\"count-{id}\">{value}</td></tr>"
            );
        }
        h.push_str("</tbody>\n</table>\n");
        h.push_str(
            "<p class=\"note\">This page summarises the bundle; the data are the CSV tables and \
             the signed entries beside it. <code>lading verify-bundle</code> checks every \
             signature and proof, and makes this page again from the signed entries and \
             <code>documents.csv</code>: a page that says anything else fails the check.</p>\n\
             </section>\n",
        );

        // Ports.
        h.push_str(
            "<section aria-labelledby=\"ports\">\n<h2 id=\"ports\">Documents by port</h2>\n",
        );
        if self.ports.is_empty() {
            h.push_str("<p>No documents in this export.</p>\n");
        } else {
            let bars: Vec<(String, Vec<u64>)> = self
                .ports
                .iter()
                .map(|(port, (l, d))| (port.clone(), vec![*l, *d]))
                .collect();
            h.push_str(&horizontal_chart(
                "ports-chart",
                "Documents by port of loading and of discharge",
                &["Port of loading", "Port of discharge"],
                &bars,
            ));
            h.push_str("<table class=\"data\" id=\"ports-table\">\n<caption>Documents by port (UN/LOCODE)</caption>\n<thead><tr><th scope=\"col\">Port</th><th scope=\"col\" class=\"n\">Loaded here</th><th scope=\"col\" class=\"n\">Discharged here</th></tr></thead>\n<tbody>\n");
            for (port, (l, d)) in &self.ports {
                let _ = writeln!(
                    h,
                    "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(port),
                    group(*l),
                    group(*d)
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str("</section>\n");

        // Days.
        h.push_str(
            "<section aria-labelledby=\"days\">\n<h2 id=\"days\">Entries per day (UTC)</h2>\n",
        );
        if self.days.is_empty() {
            h.push_str("<p>No entries in this export.</p>\n");
        } else {
            let bars: Vec<(String, Vec<u64>)> = self
                .days
                .iter()
                .map(|(d, (t, e))| (d.clone(), vec![*t, *e]))
                .collect();
            h.push_str(&vertical_chart(
                "days-chart",
                "Entries per day: transitions of title and shipment events",
                &["Transitions", "Shipment events"],
                &bars,
            ));
            h.push_str("<table class=\"data\" id=\"days-table\">\n<caption>Entries per day (UTC)</caption>\n<thead><tr><th scope=\"col\">Day</th><th scope=\"col\" class=\"n\">Transitions</th><th scope=\"col\" class=\"n\">Shipment events</th><th scope=\"col\" class=\"n\">Entries</th></tr></thead>\n<tbody>\n");
            for (d, (t, e)) in &self.days {
                let _ = writeln!(
                    h,
                    "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(d),
                    group(*t),
                    group(*e),
                    group(t + e)
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str("</section>\n");

        // States.
        h.push_str(
            "<section aria-labelledby=\"states\">\n<h2 id=\"states\">Documents by state</h2>\n",
        );
        if self.states.is_empty() {
            h.push_str("<p>No documents in this export.</p>\n");
        } else {
            let bars: Vec<(String, Vec<u64>)> = self
                .states
                .iter()
                .map(|(s, n)| (s.clone(), vec![*n]))
                .collect();
            h.push_str(&horizontal_chart(
                "states-chart",
                "Documents by state after their last transition in the range",
                &["Documents"],
                &bars,
            ));
            h.push_str("<table class=\"data\" id=\"states-table\">\n<caption>Documents by state</caption>\n<thead><tr><th scope=\"col\">State</th><th scope=\"col\" class=\"n\">Documents</th></tr></thead>\n<tbody>\n");
            for (s, n) in &self.states {
                let _ = writeln!(
                    h,
                    "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td></tr>",
                    esc(s),
                    group(*n)
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str("</section>\n");

        // Customs events.
        h.push_str("<section aria-labelledby=\"customs\">\n<h2 id=\"customs\">Customs holds and releases</h2>\n");
        if self.customs.is_empty() {
            h.push_str("<p id=\"customs-none\">No customs events (declarations, holds, releases) in this export.</p>\n");
        } else {
            let _ = writeln!(
                h,
                "<p>{} customs event{}: {} declaration{}, {} hold{}, {} release{}.</p>",
                group(self.customs_total),
                plural(self.customs_total),
                group(customs("DECLARED")),
                plural(customs("DECLARED")),
                group(customs("HOLD")),
                plural(customs("HOLD")),
                group(customs("RELEASE")),
                plural(customs("RELEASE")),
            );
            h.push_str("<table class=\"data\" id=\"customs-table\">\n<caption>Customs events in ledger order</caption>\n<thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Event</th><th scope=\"col\">Document</th><th scope=\"col\">Container</th><th scope=\"col\">Location</th><th scope=\"col\">By</th><th scope=\"col\" class=\"n\">Ledger index</th></tr></thead>\n<tbody>\n");
            for c in &self.customs {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td><span class=\"code code-{}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    esc(&c.time.replace('T', " ")),
                    esc(&c.code.to_lowercase()),
                    esc(&c.code),
                    dash(&c.document),
                    dash(&c.container),
                    dash(&c.location),
                    dash(&c.actor),
                    c.index
                );
            }
            h.push_str("</tbody>\n</table>\n");
            let more = self.customs_total - self.customs.len() as u64;
            if more > 0 {
                let _ = writeln!(
                    h,
                    "<p id=\"customs-more\">… and {} more: every one is in <code>events.csv</code> (event_kind CUSTOMS).</p>",
                    group(more)
                );
            }
        }
        h.push_str("</section>\n");

        let _ = write!(
            h,
            "</main>\n<footer>\n<h2 id=\"completeness\">Completeness</h2>\n<p>{}</p>\n\
             <p class=\"muted\">Format {}. Files: <code>documents.csv</code>, <code>transitions.csv</code>, \
             <code>events.csv</code> (described in <code>datapackage.json</code>), <code>entries.jsonl</code>, \
             <code>proofs.jsonl</code>, <code>checkpoint.jws</code>, <code>manifest.json</code> and its \
             signature <code>manifest.jws</code>.</p>\n</footer>\n</body>\n</html>\n",
            esc(&m.completeness),
            esc(&m.format)
        );
        h
    }
}

const STYLE: &str = "
:root{color-scheme:light;--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--s0:#1f5f99;--s1:#b35900;}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Liberation Sans',Arial,sans-serif;color:var(--ink);background:#fff}
header{background:#10324f;color:#fff;padding:20px 32px 16px}
header h1{margin:0 0 4px;font-size:26px}
header .kicker{margin:0;text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:#cfe3f5}
header .lead{margin:0;color:#e6eef5}
header code{color:#fff}
main{max-width:1100px;padding:8px 32px 24px}
footer{max-width:1100px;padding:8px 32px 32px}
footer h2{font-size:17px}
h2{font-size:20px;margin:28px 0 10px;border-bottom:2px solid var(--line);padding-bottom:4px}
code{font-family:'Liberation Mono',Menlo,Consolas,monospace;font-size:13px}
.hash{word-break:break-all}
.muted{color:var(--muted)}
.note{color:var(--muted);max-width:75ch}
table{border-collapse:collapse;margin:8px 0 16px}
caption{text-align:left;font-weight:600;padding:4px 0;color:var(--muted)}
th,td{padding:5px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--bg);border-bottom:2px solid var(--line)}
table.summary th{width:14em;background:var(--bg)}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.code{display:inline-block;padding:0 6px;border-radius:4px;font-weight:600;font-size:13px;border:1px solid var(--line)}
.code-hold{background:#ffebe9;color:#82071e;border-color:#ff818266}
.code-release{background:#dafbe1;color:#116329;border-color:#4ac26b66}
.code-declared{background:#ddf4ff;color:#0a3069;border-color:#54aeff66}
figure{margin:8px 0 4px}
figure svg{max-width:100%;height:auto}
figcaption{font-weight:600;color:var(--muted)}
.legend{display:flex;gap:16px;margin:4px 0;font-size:13px;color:var(--ink);padding:0;list-style:none}
.legend li::before{content:'';display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px}
.legend .s0::before{background:var(--s0)}
.legend .s1::before{background:var(--s1)}
@media print{
 header{background:none;color:#000;padding:0 0 8px;border-bottom:2px solid #000}
 header .kicker,header .lead,header code{color:#000}
 main,footer{padding:0;max-width:none}
 section{break-inside:avoid}
 tr{break-inside:avoid}
 .legend li::before,.code{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 svg{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
";

/// The fill of series `i`.
const SERIES: [&str; 2] = ["#1f5f99", "#b35900"];

/// The smallest of 1, 2, 5 × 10^k at least `n`: an axis's top value.
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

/// The axis's values: 0, a quarter, …, the top (halves when the top is too small to quarter).
fn ticks(top: u64) -> Vec<u64> {
    if top % 4 == 0 {
        (0..=4).map(|i| top / 4 * i).collect()
    } else if top % 2 == 0 {
        vec![0, top / 2, top]
    } else {
        vec![0, top]
    }
}

fn legend(series: &[&str]) -> String {
    if series.len() < 2 {
        return String::new();
    }
    let mut out = String::from("<ul class=\"legend\">");
    for (i, name) in series.iter().enumerate() {
        let _ = write!(out, "<li class=\"s{i}\">{}</li>", esc(name));
    }
    out.push_str("</ul>\n");
    out
}

/// Bars across, one group per label (one bar per series), values at the bars' ends and along
/// the axis below.
fn horizontal_chart(id: &str, title: &str, series: &[&str], bars: &[(String, Vec<u64>)]) -> String {
    const PLOT: u32 = 520;
    // Room for the longest label (about 7.5 units a character at 12 px).
    let longest = bars
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let label_width = (longest * 15 / 2 + 16).max(80);
    const BAR: u32 = 16;
    const GAP: u32 = 10;
    let peak = bars
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(peak.max(1));
    let scale = |v: u64| -> u32 {
        u32::try_from(u128::from(v) * u128::from(PLOT) / u128::from(top)).unwrap_or(PLOT)
    };
    let per_group = BAR * series.len() as u32 + GAP;
    let plot_height = per_group * bars.len() as u32;
    let top_y = 8;
    let width = label_width + PLOT + 60;
    let height = top_y + plot_height + 30;
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure>\n<figcaption id=\"{id}-title\">{t}</figcaption>\n{legend}\
         <svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"system-ui, 'Liberation Sans', Arial, sans-serif\" font-size=\"12\">\n",
        t = esc(title),
        legend = legend(series),
    );
    for v in ticks(top) {
        let x = label_width + scale(v);
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{top_y}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#d0d7de\"/>\
             <text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            group(v),
            b = top_y + plot_height,
            ty = top_y + plot_height + 18,
        );
    }
    for (g, (label, values)) in bars.iter().enumerate() {
        let y0 = top_y + g as u32 * per_group + GAP / 2;
        let _ = writeln!(
            s,
            "<text x=\"{lx}\" y=\"{ly}\" text-anchor=\"end\" fill=\"#1b1f24\">{}</text>",
            esc(label),
            lx = label_width - 8,
            ly = y0 + BAR * series.len() as u32 / 2 + 4,
        );
        for (i, v) in values.iter().enumerate() {
            let y = y0 + i as u32 * BAR;
            let w = scale(*v).max(u32::from(*v > 0));
            let name = series.get(i).copied().unwrap_or("");
            let _ = writeln!(
                s,
                "<rect x=\"{label_width}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{fill}\"><title>{l}: {n} {v}</title></rect>\
                 <text x=\"{tx}\" y=\"{ty}\" fill=\"#1b1f24\">{v}</text>",
                h = BAR - 2,
                fill = SERIES[i % SERIES.len()],
                l = esc(label),
                n = esc(&name.to_lowercase()),
                v = group(*v),
                tx = label_width + w + 4,
                ty = y + BAR - 4,
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{label_width}\" y1=\"{top_y}\" x2=\"{label_width}\" y2=\"{b}\" stroke=\"#57606a\"/>\n</svg>\n</figure>\n",
        b = top_y + plot_height
    );
    s
}

/// Bars up, one stack per label (series stacked), the axis's values on the left and the
/// labels below (thinned to a dozen when there are many).
fn vertical_chart(id: &str, title: &str, series: &[&str], bars: &[(String, Vec<u64>)]) -> String {
    const LEFT: u32 = 56;
    // Room above the tallest bar for its total.
    const TOP: u32 = 24;
    const PLOT: u32 = 220;
    const WIDE: u32 = 760;
    let n = bars.len().max(1) as u32;
    let step = (WIDE / n).clamp(4, 64);
    let bar = (step * 3 / 4).max(3);
    let peak = bars
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(peak.max(1));
    let scale = |v: u64| -> u32 {
        u32::try_from(u128::from(v) * u128::from(PLOT) / u128::from(top)).unwrap_or(PLOT)
    };
    let base = TOP + PLOT;
    let width = LEFT + step * n + 24;
    let height = base + 40;
    let every = bars.len().div_ceil(12).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure>\n<figcaption id=\"{id}-title\">{t}</figcaption>\n{legend}\
         <svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"system-ui, 'Liberation Sans', Arial, sans-serif\" font-size=\"12\">\n",
        t = esc(title),
        legend = legend(series),
    );
    for v in ticks(top) {
        let y = base - scale(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#d0d7de\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            group(v),
            r = LEFT + step * n,
            tx = LEFT - 6,
            ty = y + 4,
        );
    }
    for (i, (label, values)) in bars.iter().enumerate() {
        let x = LEFT + i as u32 * step + (step - bar) / 2;
        let mut y = base;
        let total: u64 = values.iter().sum();
        for (k, v) in values.iter().enumerate() {
            let h = scale(*v).max(u32::from(*v > 0));
            y -= h.min(y - TOP);
            let name = series.get(k).copied().unwrap_or("");
            let _ = writeln!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{fill}\"><title>{l}: {v} {n}</title></rect>",
                fill = SERIES[k % SERIES.len()],
                l = esc(label),
                v = group(*v),
                n = esc(&name.to_lowercase()),
            );
        }
        if step >= 28 {
            let _ = writeln!(
                s,
                "<text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#1b1f24\">{}</text>",
                group(total),
                cx = x + bar / 2,
                ty = y.saturating_sub(4),
            );
        }
        if i % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#1b1f24\">{}</text>",
                esc(label),
                cx = x + bar / 2,
                ty = base + 18,
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{r}\" y2=\"{base}\" stroke=\"#57606a\"/>\n</svg>\n</figure>\n",
        r = LEFT + step * n
    );
    s
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A cell's text, or a dash for an empty one.
fn dash(text: &str) -> String {
    if text.is_empty() {
        "<span class=\"muted\">—</span>".to_owned()
    } else {
        esc(text)
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ManifestCheckpoint, ManifestCounts, ManifestRange};

    fn manifest() -> Manifest {
        Manifest {
            format: crate::BUNDLE_FORMAT.to_owned(),
            authority: "customs-nl".to_owned(),
            exporter: "customs-nl:k1".to_owned(),
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            range: ManifestRange { from: 0, to: 1000 },
            checkpoint: ManifestCheckpoint {
                size: 1000,
                block_size: 8,
                root: "00".repeat(32),
                sha256: "11".repeat(32),
            },
            counts: ManifestCounts::default(),
            files: BTreeMap::new(),
            previous: None,
            completeness: "<every entry>".to_owned(),
        }
    }

    fn event(index: u64, day: u32, code: &str) -> EventRow {
        EventRow {
            ledger_index: index,
            time: format!("2026-01-{day:02}T10:00:00.000Z"),
            event_code: code.to_owned(),
            event_kind: "CUSTOMS".to_owned(),
            actor: "customs-nl".to_owned(),
            document: "DOC<1>".to_owned(),
            container: String::new(),
            location: "NLRTM".to_owned(),
            vessel: String::new(),
            voyage: String::new(),
            remarks: String::new(),
            kid: "customs-nl:k1".to_owned(),
            leaf_hash: "22".repeat(32),
        }
    }

    #[test]
    fn the_customs_list_is_capped_and_the_rest_counted() {
        let mut report = Report::default();
        let total = CUSTOMS_LISTED as u64 + 7;
        for i in 0..total {
            let code = if i % 2 == 0 { "HOLD" } else { "RELEASE" };
            report.event(&event(i, 1 + (i % 28) as u32, code));
        }
        let page = report.render(&manifest());
        assert_eq!(page.matches("<tr><td>").count(), CUSTOMS_LISTED);
        assert!(page.contains("… and 7 more"), "{page}");
        assert!(page.contains("<td id=\"count-customs\">207</td>"));
        assert!(page.contains("<td id=\"count-holds\">104</td>"));
        // Every day has its row; text is escaped; the same rows make the same page.
        assert_eq!(page.matches("<tr><th scope=\"row\">2026-01-").count(), 28);
        assert!(page.contains("DOC&lt;1&gt;") && !page.contains("DOC<1>"));
        assert!(page.contains("&lt;every entry&gt;"));
        let mut again = Report::default();
        for i in 0..total {
            let code = if i % 2 == 0 { "HOLD" } else { "RELEASE" };
            again.event(&event(i, 1 + (i % 28) as u32, code));
        }
        assert_eq!(again.render(&manifest()), page);
    }

    #[test]
    fn an_empty_export_says_so() {
        let page = Report::default().render(&manifest());
        assert!(page.contains("No documents in this export."));
        assert!(page.contains("No entries in this export."));
        assert!(page.contains("customs-none"));
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn numbers_are_grouped_and_axes_round() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(ticks(20), vec![0, 5, 10, 15, 20]);
        assert_eq!(ticks(2), vec![0, 1, 2]);
        assert_eq!(ticks(5), vec![0, 5]);
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
