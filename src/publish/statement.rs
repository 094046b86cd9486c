//! The settlement statement as documents: a printable A4 page with Chinese
//! and English labels (and a PDF of it through headless Chromium), and CSV.
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::account::contract::Split;
use crate::account::statement::Statement;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn kwh(v: f64) -> String {
    format!("{v:.2}")
}

fn opt_kwh(v: Option<f64>) -> String {
    v.map_or("–".into(), kwh)
}

fn cny(v: f64) -> String {
    format!("{v:.2}")
}

const STYLE: &str = r#"
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "Source Han Sans SC", sans-serif; font-size: 9pt; color: #111; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 10.5pt; margin: 5mm 0 1.5mm; border-bottom: 0.3mm solid #444; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.2mm solid #888; padding: 1mm 1.2mm; text-align: right; }
th { background: #eee; font-weight: 600; }
td.l, th.l { text-align: left; }
tr.total td { font-weight: 700; }
.meta td { border: none; text-align: left; padding: 0.5mm 2mm 0.5mm 0; }
.flag { color: #a00; font-weight: 700; }
.notes li { margin-bottom: 1mm; }
.sign { margin-top: 8mm; display: flex; gap: 12mm; }
.sign div { flex: 1; border-top: 0.3mm solid #111; padding-top: 1.5mm; min-height: 22mm; }
.small { font-size: 7.5pt; color: #444; }
"#;

pub fn html(s: &Statement) -> String {
    let mut h = String::new();
    let c = &s.currency;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>结算单 Settlement statement {} {}</title><style>{STYLE}</style></head><body>",
        esc(&s.site),
        esc(&s.period)
    );
    let _ = write!(
        h,
        "<h1>储能电费结算单 · Energy storage settlement statement</h1><table class=\"meta\">\
         <tr><td>站点 Site</td><td><b>{}</b> ({})</td><td>结算周期 Period</td><td><b>{}</b> ({} – {})</td></tr>\
         <tr><td>电价 Tariff</td><td>{}</td><td>电量来源 Energy source</td><td><b>{}</b></td></tr>\
         </table><p class=\"small\">{}</p>",
        esc(&s.site_name),
        esc(&s.site),
        esc(&s.period),
        s.from,
        s.to,
        esc(&s.tariff),
        if s.energy_source == "meter" { "储能计量表 meter" } else { "台账 ledger" },
        esc(&s.energy_source_reason)
    );
    let _ = write!(
        h,
        "<h2>分时电量与电费 · Energy and money per rate</h2><table><tr>\
         <th class=\"l\">时段<br>Band</th><th>费率<br>Rate</th><th class=\"l\">执行日期<br>Days</th><th>单价<br>Price {c}/kWh</th>\
         <th>正向期初<br>Fwd open</th><th>正向期末<br>Fwd close</th><th>反向期初<br>Rev open</th><th>反向期末<br>Rev close</th>\
         <th>充电量<br>Charged kWh</th><th>放电量<br>Discharged kWh</th><th>充电电费<br>Charge cost</th><th>放电收益<br>Discharge value</th><th>节省<br>Savings</th></tr>"
    );
    for l in &s.bands {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{} – {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.band),
            l.rate.map_or("–".into(), |r| r.to_string()),
            l.price_from.strftime("%m-%d"),
            l.price_to.strftime("%m-%d"),
            l.price,
            opt_kwh(l.opening_charge_kwh),
            opt_kwh(l.closing_charge_kwh),
            opt_kwh(l.opening_discharge_kwh),
            opt_kwh(l.closing_discharge_kwh),
            kwh(l.charge_kwh),
            kwh(l.discharge_kwh),
            cny(l.charge_cost),
            cny(l.discharge_value),
            cny(l.savings)
        );
    }
    let _ = write!(
        h,
        "<tr class=\"total\"><td class=\"l\" colspan=\"8\">合计 Total</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        kwh(s.charge_kwh),
        kwh(s.discharge_kwh),
        cny(s.charge_cost),
        cny(s.discharge_value),
        cny(s.arbitrage_savings)
    );
    let _ = write!(
        h,
        "<h2>节省与分成 · Savings and the contract split ({c})</h2><table>\
         <tr><th class=\"l\"></th><th>金额 Amount</th><th>含税 Incl. VAT</th><th>不含税 Excl. VAT</th></tr>"
    );
    let _ = write!(
        h,
        "<tr><td class=\"l\">峰谷套利节省 Arbitrage savings</td><td>{}</td><td></td><td></td></tr>",
        cny(s.arbitrage_savings)
    );
    if let Some(d) = s.demand_savings {
        let _ = write!(
            h,
            "<tr><td class=\"l\">需量电费节省 Demand savings{}</td><td>{}</td><td></td><td></td></tr>",
            if s.demand_included { "" } else { " (合同不含 not in the contract)" },
            cny(d)
        );
    }
    let _ = write!(
        h,
        "<tr class=\"total\"><td class=\"l\">总节省 Total savings</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        cny(s.total_savings),
        cny(s.total_savings_incl_vat),
        cny(s.total_savings_excl_vat)
    );
    if let (Some(host), Some(inv)) = (s.host_amount, s.investor_amount) {
        let how = match s.contract {
            Some(Split::Share { host_share }) => {
                format!("收益分成 revenue share, host {:.2} %", host_share * 100.0)
            }
            Some(Split::Discount { discount }) => {
                format!(
                    "电价折扣 discount {:.2} % on discharged energy",
                    discount * 100.0
                )
            }
            None => String::new(),
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">业主 Host: {} <span class=\"small\">({})</span></td><td>{}</td><td>{}</td><td>{}</td></tr>\
             <tr><td class=\"l\">投资方 Investor: {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.host),
            esc(&how),
            cny(host),
            s.host_amount_incl_vat.map_or(String::new(), cny),
            s.host_amount_excl_vat.map_or(String::new(), cny),
            esc(&s.investor),
            cny(inv),
            s.investor_amount_incl_vat.map_or(String::new(), cny),
            s.investor_amount_excl_vat.map_or(String::new(), cny)
        );
    }
    let _ = write!(
        h,
        "</table><p class=\"small\">增值税率 VAT rate {:.0} %; 电价{} prices {} VAT.</p>",
        s.vat_rate * 100.0,
        if s.prices_include_vat {
            "含税"
        } else {
            "不含税"
        },
        if s.prices_include_vat {
            "include"
        } else {
            "exclude"
        }
    );
    if let Some(e) = s.schedule_efficiency {
        let _ = write!(
            h,
            "<p>调度效率 Schedule efficiency: <b>{:.1} %</b> of the tariff's optimum for this battery ({} {c}).</p>",
            e * 100.0,
            cny(s.optimum_savings)
        );
    }
    if let Some(r) = &s.reconciliation {
        let _ = write!(
            h,
            "<h2>计量核对 · Ledger against meter ({} – {}, tolerance {} %)</h2><table><tr><th class=\"l\">Flow</th><th>Rate</th><th class=\"l\">Band</th><th>Meter kWh</th><th>Ledger kWh</th><th>Diff kWh</th><th>Diff %</th></tr>",
            r.from,
            r.to,
            r.tolerance * 100.0
        );
        for l in &r.lines {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
                l.flow,
                l.rate,
                esc(&l.band),
                kwh(l.meter_kwh),
                kwh(l.ledger_kwh),
                kwh(l.difference_kwh),
                if l.flagged { " class=\"flag\"" } else { "" },
                l.difference_pct.map_or("–".into(), |p| format!("{p:.2}"))
            );
        }
        h += "</table>";
    }
    h += "<h2>备注 · Notes</h2><ul class=\"notes\">";
    for n in &s.notes {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    let u = &s.uncertainty;
    let _ = write!(
        h,
        "<li>Uncertainty: unattributed {:.3} kWh charged, {:.3} kWh discharged; up to {:.3} / {:.3} kWh hidden by counter resets; {:.3} kWh quarantined; the ledger's savings lie in [{}, {}].</li>\
         <li>舍入规则 Rounding: {}</li></ul>",
        u.unattributed_charge_kwh,
        u.unattributed_discharge_kwh,
        u.hidden_charge_max_kwh,
        u.hidden_discharge_max_kwh,
        u.quarantined_kwh,
        cny(u.ledger_savings_range[0]),
        cny(u.ledger_savings_range[1]),
        esc(s.rounding)
    );
    let _ = write!(
        h,
        "<div class=\"sign\"><div>业主（签字/盖章）Host (signature, seal)<br>{}<br><br>日期 Date:</div>\
         <div>投资方（签字/盖章）Investor (signature, seal)<br>{}<br><br>日期 Date:</div></div>\
         <p class=\"small\">Generated by bessmon {}.</p></body></html>",
        esc(&s.host),
        esc(&s.investor),
        env!("CARGO_PKG_VERSION")
    );
    h
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(s: &Statement) -> String {
    let mut out = String::from("site,period,energy_source,band,rate,price_from,price_to,price,opening_charge_kwh,closing_charge_kwh,opening_discharge_kwh,closing_discharge_kwh,charge_kwh,discharge_kwh,charge_cost,discharge_value,savings,currency\n");
    let o = |v: Option<f64>| v.map_or(String::new(), kwh);
    for l in &s.bands {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.site),
            s.period,
            s.energy_source,
            csv_field(&l.band),
            l.rate.map_or(String::new(), |r| r.to_string()),
            l.price_from,
            l.price_to,
            l.price,
            o(l.opening_charge_kwh),
            o(l.closing_charge_kwh),
            o(l.opening_discharge_kwh),
            o(l.closing_discharge_kwh),
            kwh(l.charge_kwh),
            kwh(l.discharge_kwh),
            cny(l.charge_cost),
            cny(l.discharge_value),
            cny(l.savings),
            s.currency
        );
    }
    let mut total = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            let _ = writeln!(
                out,
                "{},{},{},{name},,,,,,,,,,,,,{},{}",
                csv_field(&s.site),
                s.period,
                s.energy_source,
                cny(v),
                s.currency
            );
        }
    };
    total("arbitrage_savings", Some(s.arbitrage_savings));
    total(
        "demand_savings",
        s.demand_savings.filter(|_| s.demand_included),
    );
    total("total_savings", Some(s.total_savings));
    total("host_amount", s.host_amount);
    total("investor_amount", s.investor_amount);
    total("total_savings_excl_vat", Some(s.total_savings_excl_vat));
    total("host_amount_excl_vat", s.host_amount_excl_vat);
    total("investor_amount_excl_vat", s.investor_amount_excl_vat);
    out
}

/// The first headless Chromium on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

/// Prints `html` to a PDF at `out` with headless Chromium.
pub fn pdf(html: &str, out: &Path) -> Result<(), String> {
    let chromium = find_chromium().ok_or(
        "--format pdf needs headless Chromium, and none is on PATH: install it (Debian: apt-get install chromium) or use --format html and print that page",
    )?;
    let dir = TempDir::new()?;
    let page = dir.path().join("statement.html");
    std::fs::write(&page, html).map_err(|e| format!("{}: {e}", page.display()))?;
    let out_abs = std::path::absolute(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let result = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", out_abs.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", chromium.display()))?;
    let made = std::fs::metadata(&out_abs).is_ok_and(|m| m.len() > 0);
    if !result.status.success() || !made {
        return Err(format!(
            "{} did not print {}: {}",
            chromium.display(),
            out.display(),
            String::from_utf8_lossy(&result.stderr)
                .lines()
                .last()
                .unwrap_or("no message")
        ));
    }
    Ok(())
}

/// A private folder for Chromium's page and profile, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p =
            std::env::temp_dir().join(format!("bessmon-statement-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
