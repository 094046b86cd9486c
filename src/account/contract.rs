//! The energy-management contract (合同能源管理) that splits a month's
//! savings between the host enterprise and the investor who owns the
//! battery: a revenue share, or a discount on the discharged energy's price.
//! Amounts are in fen (integers), so the two parts always add up to the
//! whole to the fen, as they must on a signed sheet.
use serde::{Deserialize, Serialize};

/// `[sites.contract]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractFile {
    pub kind: String,
    #[serde(default)]
    pub host_share: Option<f64>,
    #[serde(default)]
    pub discount: Option<f64>,
    #[serde(default = "default_vat")]
    pub vat_rate: f64,
    #[serde(default = "yes")]
    pub prices_include_vat: bool,
    /// Demand-charge savings count only when the contract says so.
    #[serde(default)]
    pub include_demand: bool,
    /// The parties as named on the signature lines.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub investor: Option<String>,
}

fn default_vat() -> f64 {
    0.13
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Split {
    /// The host receives this fraction of the savings.
    Share { host_share: f64 },
    /// The host pays for discharged energy at the grid price less this
    /// fraction; the investor pays for the charging energy.
    Discount { discount: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    pub split: Split,
    pub vat_rate: f64,
    pub prices_include_vat: bool,
    pub include_demand: bool,
    pub host: String,
    pub investor: String,
}

fn fraction(v: Option<f64>, key: &str, e: &mut impl FnMut(String, String)) -> f64 {
    match v {
        Some(x) if (0.0..=1.0).contains(&x) => x,
        Some(x) => {
            e(key.into(), format!("{x} must be a fraction from 0 to 1"));
            0.0
        }
        None => {
            e(key.into(), "is required for this kind of contract".into());
            0.0
        }
    }
}

impl ContractFile {
    /// Checks the section; `key` is its place in the config for errors.
    pub fn check(&self, key: &str, e: &mut impl FnMut(String, String)) -> Contract {
        let split = match self.kind.as_str() {
            "share" => Split::Share {
                host_share: fraction(self.host_share, &format!("{key}.host_share"), e),
            },
            "discount" => Split::Discount {
                discount: fraction(self.discount, &format!("{key}.discount"), e),
            },
            other => {
                e(
                    format!("{key}.kind"),
                    format!("`{other}` is not share or discount"),
                );
                Split::Share { host_share: 0.0 }
            }
        };
        if !(0.0..1.0).contains(&self.vat_rate) {
            e(
                format!("{key}.vat_rate"),
                format!("{} is not a VAT rate (0.13 is 13 %)", self.vat_rate),
            );
        }
        Contract {
            split,
            vat_rate: self.vat_rate,
            prices_include_vat: self.prices_include_vat,
            include_demand: self.include_demand,
            host: self.host.clone().unwrap_or_else(|| "Host (业主)".into()),
            investor: self
                .investor
                .clone()
                .unwrap_or_else(|| "Investor (投资方)".into()),
        }
    }
}

/// Rounds a fractional number of fen half away from zero, the rule a bill
/// states ("rounded half up to the fen").
pub fn round_fen(fen: f64) -> i64 {
    fen.round() as i64
}

/// The money of one period split between the parties, all in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shares {
    /// What the split applies to: arbitrage savings, plus demand savings
    /// when the contract includes them.
    pub total: i64,
    pub host: i64,
    pub investor: i64,
}

impl Contract {
    /// Splits the savings. `discharge_value` and `demand` are the parts a
    /// discount applies to (both in fen, VAT as the prices are); the
    /// investor's part is the total less the host's, so they add up exactly.
    pub fn split(&self, savings: i64, discharge_value: i64, demand: i64) -> Shares {
        let demand = if self.include_demand { demand } else { 0 };
        let total = savings.saturating_add(demand);
        let host = match self.split {
            Split::Share { host_share } => round_fen(total as f64 * host_share),
            Split::Discount { discount } => round_fen((discharge_value + demand) as f64 * discount),
        };
        Shares {
            total,
            host,
            investor: total.saturating_sub(host),
        }
    }

    /// The same shares with VAT and without: (gross, net). Prices that
    /// include VAT give the gross; the net is the gross over (1 + rate),
    /// rounded per amount with the investor's part taking the remainder.
    pub fn with_and_without_vat(&self, s: Shares) -> (Shares, Shares) {
        let f = 1.0 + self.vat_rate;
        if self.prices_include_vat {
            let total = round_fen(s.total as f64 / f);
            let host = round_fen(s.host as f64 / f);
            (
                s,
                Shares {
                    total,
                    host,
                    investor: total.saturating_sub(host),
                },
            )
        } else {
            let total = round_fen(s.total as f64 * f);
            let host = round_fen(s.host as f64 * f);
            (
                Shares {
                    total,
                    host,
                    investor: total.saturating_sub(host),
                },
                s,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(text: &str) -> (Contract, Vec<String>) {
        let f: ContractFile = toml::from_str(text).unwrap();
        let mut errs = Vec::new();
        let c = f.check("sites[0].contract", &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        (c, errs)
    }

    #[test]
    fn a_share_adds_up_to_the_fen_whatever_the_rounding() {
        let (c, errs) = contract("kind = \"share\"\nhost_share = 0.15");
        assert!(errs.is_empty(), "{errs:?}");
        for total in [0, 1, 7, 333, 100_001, 7_342_567, -1_234] {
            let s = c.split(total, 0, 0);
            assert_eq!(s.host + s.investor, total);
            assert_eq!(s.host, round_fen(total as f64 * 0.15));
            let (gross, net) = c.with_and_without_vat(s);
            assert_eq!(gross, s);
            assert_eq!(net.host + net.investor, net.total);
        }
        // 15 % of 1.01 CNY is 15.15 fen: 15.
        assert_eq!(c.split(101, 0, 0).host, 15);
        assert_eq!(c.split(110, 0, 0).host, 17, "16.5 fen rounds half up");
    }

    #[test]
    fn a_discount_gives_the_host_its_fraction_of_the_discharge_value() {
        let (c, _) = contract("kind = \"discount\"\ndiscount = 0.1\ninclude_demand = true");
        // Discharged for 1,000.00, charged for 400.00, demand saved 50.00.
        let s = c.split(60_000, 100_000, 5_000);
        assert_eq!(s.total, 65_000);
        assert_eq!(s.host, 10_500);
        assert_eq!(s.investor, 54_500);
    }

    #[test]
    fn net_prices_get_vat_added() {
        let (c, _) = contract("kind = \"share\"\nhost_share = 0.2\nprices_include_vat = false");
        let (gross, net) = c.with_and_without_vat(c.split(10_000, 0, 0));
        assert_eq!(net.total, 10_000);
        assert_eq!(gross.total, 11_300);
        assert_eq!(gross.host, 2_260);
    }

    #[test]
    fn wrong_contracts_are_named_by_key() {
        let (_, errs) = contract("kind = \"split\"");
        assert_eq!(
            errs,
            ["sites[0].contract.kind: `split` is not share or discount"]
        );
        let (_, errs) = contract("kind = \"share\"\nhost_share = 15\nvat_rate = 13");
        assert_eq!(
            errs,
            [
                "sites[0].contract.host_share: 15 must be a fraction from 0 to 1",
                "sites[0].contract.vat_rate: 13 is not a VAT rate (0.13 is 13 %)"
            ]
        );
        let (_, errs) = contract("kind = \"discount\"");
        assert_eq!(
            errs,
            ["sites[0].contract.discount: is required for this kind of contract"]
        );
    }
}
