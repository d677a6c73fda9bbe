//! Samples and how they are printed: min / median / max, and beside a figure its reference and
//! the ratio of the medians.

use std::fmt::Write as _;

/// Values of one figure, in the unit its name says.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = f64>) {
        self.0.extend(values);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn median(&self) -> Option<f64> {
        let v = self.sorted();
        (!v.is_empty())
            .then(|| if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 })
    }

    /// `median (min–max, n=N)`, or `no samples`.
    pub fn describe(&self) -> String {
        let v = self.sorted();
        match self.median() {
            Some(m) => format!("{} ({}–{}, n={})", num(m), num(v[0]), num(v[v.len() - 1]), v.len()),
            None => "no samples".into(),
        }
    }
}

fn num(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 1.0 || a == 0.0 => format!("{x:.2}"),
        _ => format!("{x:.3}"), // ratios such as 0.053
    }
}

/// One figure: `name  median (min–max, n)  |  reference  median (…)  |  ratio`.
pub fn figure(name: &str, unit: &str, samples: &Samples, reference: Option<(&str, &Samples)>) {
    let mut line = format!("{name:<44} {:>30} {unit}", samples.describe());
    if let Some((what, r)) = reference {
        let _ = write!(line, "  | {what}: {} {unit}", r.describe());
        if let (Some(a), Some(b)) = (samples.median(), r.median())
            && b != 0.0
        {
            let _ = write!(line, "  | ratio {:.3}", a / b);
        }
    }
    say!("{line}");
}

/// The machine's load average (1, 5, 15 minutes) and its cores, for every section's header.
pub fn load() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fields: Vec<&str> = avg.split_whitespace().take(3).collect();
    format!("load average {} on {cores} cores", fields.join(" "))
}

pub fn section(title: &str) {
    say!("\n== {title} ({})", load());
}

/// Writes one line to stdout; a reader that went away (a closed pipe) ends the process with
/// status 0, as it would a C program, instead of a panic.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("twi-bench: cannot write its output: {e}");
        std::process::exit(1);
    }
}
