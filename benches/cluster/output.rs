//! The output of the benchmark: the table on stdout and the JSON file.

use crate::Plan;
use crate::figures::{Figure, summary};
use std::fmt::Write as _;
use std::time::Duration;

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{}", (x * 1000.0).round() / 1000.0)
    } else {
        "null".into()
    }
}

fn json_nums(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| json_num(*x)).collect();
    format!("[{}]", items.join(", "))
}

pub fn to_json(plan: &Plan, figures: &[Figure], errors: &[String], total: Duration) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"mode\": {},", json_str(plan.mode()));
    let _ = writeln!(o, "  \"total_seconds\": {},", json_num(total.as_secs_f64()));
    o.push_str("  \"figures\": [\n");
    for (i, f) in figures.iter().enumerate() {
        o.push_str("    {");
        let _ = write!(o, "\"figure\": {}, ", json_str(&f.name));
        let _ = write!(o, "\"value\": {}, ", json_str(&f.value));
        let _ = write!(o, "\"unit\": {}, ", json_str(f.unit));
        if let Some(s) = summary(&f.samples) {
            let _ = write!(
                o,
                "\"n\": {}, \"p50\": {}, \"p90\": {}, \"max\": {}, ",
                f.samples.len(),
                json_num(s.p50),
                json_num(s.p90),
                json_num(s.max)
            );
        }
        let _ = write!(o, "\"samples\": {}, ", json_nums(&f.samples));
        for (k, v) in &f.extra {
            let _ = write!(o, "{}: {}, ", json_str(k), json_nums(v));
        }
        let _ = write!(o, "\"target\": {}, ", json_str(&f.target));
        let met = f.met.map_or("null", |m| if m { "true" } else { "false" });
        let _ = write!(o, "\"target_met\": {met}, ");
        let _ = write!(o, "\"note\": {}", json_str(&f.note));
        o.push('}');
        o.push_str(if i + 1 < figures.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ],\n");
    let errs: Vec<String> = errors.iter().map(|e| json_str(e)).collect();
    let _ = writeln!(o, "  \"errors\": [{}]", errs.join(", "));
    o.push_str("}\n");
    o
}

pub fn table(figures: &[Figure]) -> String {
    let rows: Vec<[String; 4]> = figures
        .iter()
        .map(|f| {
            let status = match f.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            [
                f.name.clone(),
                f.value.clone(),
                f.target.clone(),
                status.to_string(),
            ]
        })
        .collect();
    let head = [
        "figure".to_string(),
        "value".to_string(),
        "target".to_string(),
        String::new(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain([&head])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2)];
    let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n - s.chars().count()));
    let mut o = String::new();
    let line = |o: &mut String, r: &[String; 4]| {
        let _ = writeln!(
            o,
            "{}  {}  {}  {}",
            pad(&r[0], w[0]),
            pad(&r[1], w[1]),
            pad(&r[2], w[2]),
            r[3]
        );
    };
    line(&mut o, &head);
    let _ = writeln!(o, "{}", "-".repeat(w[0] + w[1] + w[2] + 12));
    for r in &rows {
        line(&mut o, r);
    }
    let notes: Vec<&Figure> = figures.iter().filter(|f| !f.note.is_empty()).collect();
    if !notes.is_empty() {
        o.push_str("\nnotes:\n");
        for f in notes {
            let _ = writeln!(o, "  {}: {}", f.name, f.note);
        }
    }
    o
}
