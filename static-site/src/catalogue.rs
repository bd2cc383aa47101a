//! What is on sale: names and prices, from the small static `catalogue.json` shipped in the page.
//!
//! Names and prices are marketing content, not sale state: they change with a deploy of the site,
//! never during a sale, so they travel with the (short-cached) HTML instead of costing the origin a
//! request per shopper. The sale's state and times come from `GET /api/sales/{sku}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::i18n::Lang;

#[derive(Debug, thiserror::Error)]
#[error("catalogue.json is not valid: {0}")]
pub struct CatalogueError(#[from] serde_json::Error);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// ISO 4217 code of every price (`CNY`).
    pub currency: String,
    pub items: BTreeMap<String, Item>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: Names,
    /// Price in the currency's minor unit (fen, cents).
    pub price: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Names {
    pub en: String,
    pub zh: String,
}

impl Catalogue {
    pub fn parse(json: &str) -> Result<Catalogue, CatalogueError> {
        Ok(serde_json::from_str(json)?)
    }

    pub fn item(&self, sku: &str) -> Option<&Item> {
        self.items.get(sku)
    }

    /// `¥3,999.00`; codes without a known symbol are written out (`EUR 12.50`).
    pub fn price(&self, minor: u64) -> String {
        let units = group_thousands(minor / 100);
        let cents = minor % 100;
        match self.currency.as_str() {
            "CNY" | "JPY" => format!("¥{units}.{cents:02}"),
            "USD" => format!("${units}.{cents:02}"),
            code => format!("{code} {units}.{cents:02}"),
        }
    }
}

impl Item {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.name.en,
            Lang::Zh => &self.name.zh,
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_parses() {
        let c = Catalogue::parse(include_str!("../catalogue.json")).expect("static-site/catalogue.json");
        let phone = c.item("phone-1").expect("phone-1 is in the catalogue");
        assert!(!phone.name(Lang::En).is_empty() && !phone.name(Lang::Zh).is_empty());
        assert!(c.item("demo-phone").is_some(), "the sku `cargo xtask demo` sells");
        assert!(c.item("nope").is_none());
    }

    #[test]
    fn prices() {
        let c = Catalogue { currency: "CNY".into(), items: BTreeMap::new() };
        assert_eq!(c.price(399_900), "¥3,999.00");
        assert_eq!(c.price(5), "¥0.05");
        assert_eq!(c.price(123_456_789), "¥1,234,567.89");
        let e = Catalogue { currency: "EUR".into(), items: BTreeMap::new() };
        assert_eq!(e.price(1_250), "EUR 12.50");
    }

    #[test]
    fn typos_are_refused() {
        assert!(Catalogue::parse(r#"{"currency":"CNY","items":{"a":{"name":{"en":"A","zh":"甲"},"prise":1}}}"#).is_err());
    }
}
