//! The Prometheus text exposition format (version 0.0.4): a family's HELP
//! and TYPE lines, then its samples with escaped label values.
use std::fmt::{Display, Write as _};

/// A label value as the format escapes it: backslash, double quote, newline.
fn escape(v: &str, o: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

#[derive(Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn with_capacity(n: usize) -> Text {
        Text {
            out: String::with_capacity(n),
        }
    }

    /// Starts a family: `kind` is gauge, counter, histogram or summary.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_in_the_exposition_format() {
        let mut t = Text::default();
        t.family("bessmon_up", "gauge", "1 while the daemon runs.");
        t.sample("bessmon_up", &[], 1);
        t.sample("bessmon_x", &[("site", "a\"b\\c\nd"), ("le", "0.5")], 2.5);
        assert_eq!(
            t.finish(),
            "# HELP bessmon_up 1 while the daemon runs.\n# TYPE bessmon_up gauge\n\
             bessmon_up 1\n\
             bessmon_x{site=\"a\\\"b\\\\c\\nd\",le=\"0.5\"} 2.5\n"
        );
    }
}
