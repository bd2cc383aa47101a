//! Which sale the page shows: the sku from the URL, `/s/{sku}` or `/?sku={sku}`.
//!
//! Skus follow the system's id rule (`seckill_core::is_valid_id`), so anything else in the URL is
//! refused here instead of being pasted into API paths.

use seckill_core::is_valid_id;

/// The sku named by a URL's path and query (`location.pathname`, `location.search`).
/// The path form wins when both are present.
pub fn sku_from_url(path: &str, query: &str) -> Option<String> {
    let from_path = path.strip_prefix("/s/").map(|rest| rest.trim_end_matches('/'));
    let from_query = query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "sku")
        .map(|(_, v)| v);
    [from_path, from_query].into_iter().flatten().find(|s| is_valid_id(s)).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_forms() {
        assert_eq!(sku_from_url("/s/phone-1", ""), Some("phone-1".into()));
        assert_eq!(sku_from_url("/s/phone-1/", ""), Some("phone-1".into()));
        assert_eq!(sku_from_url("/", "?sku=phone-1"), Some("phone-1".into()));
        assert_eq!(sku_from_url("/index.html", "?lang=zh&sku=tv_2"), Some("tv_2".into()));
        assert_eq!(sku_from_url("/s/phone-1", "?sku=tv-1"), Some("phone-1".into()), "the path wins");
    }

    #[test]
    fn nothing_or_garbage_is_no_sku() {
        assert_eq!(sku_from_url("/", ""), None);
        assert_eq!(sku_from_url("/", "?sku="), None);
        assert_eq!(sku_from_url("/s/a/b", ""), None);
        assert_eq!(sku_from_url("/", "?sku=..%2Fadmin"), None);
        assert_eq!(sku_from_url("/", &format!("?sku={}", "x".repeat(65))), None);
        assert_eq!(sku_from_url("/s/", "?sku=ok"), Some("ok".into()), "an empty path sku falls back to the query");
    }
}
