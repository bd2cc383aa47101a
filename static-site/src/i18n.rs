//! Chinese and English: every word the page shows, in one place.
//!
//! The language comes from the shopper's own choice (the switch, remembered by the shell), else
//! from the browser's preferred languages (`navigator.languages`, which mirrors `Accept-Language`),
//! else English. Texts are plain words on purpose: a shopper under time pressure must understand at
//! once whether they got one, and what to do next.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lang {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    Zh,
}

impl Lang {
    /// The language for a list of preferred language tags, best first (`["zh-CN", "en"]`).
    /// The first tag that is Chinese or English decides; others are skipped.
    pub fn from_preferences<S: AsRef<str>>(tags: &[S]) -> Lang {
        tags.iter().find_map(|t| Lang::from_tag(t.as_ref())).unwrap_or(Lang::En)
    }

    /// `zh`, `zh-CN`, `zh-Hans`, `zh_TW` ... → Chinese; `en`, `en-GB` ... → English; else `None`.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_', ';']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The other language (what the switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    fn pick(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// Texts of the page's fixed parts, by the `data-i18n` key the shell's HTML uses.
    pub fn fixed_texts(self) -> Vec<(&'static str, &'static str)> {
        let l = self;
        vec![
            ("doc_title", l.pick("Flash sale", "限时秒杀")),
            ("brand", l.pick("Flash sale", "限时秒杀")),
            ("signin_heading", l.pick("Your account", "账户")),
            ("uid_label", l.pick("User id", "用户名")),
            ("uid_hint", l.pick("1 to 64 letters, digits, _ or -", "1 到 64 个字母、数字、_ 或 -")),
            ("signin_button", l.pick("Sign in", "登录")),
            (
                "signin_note",
                l.pick(
                    "This is the demo sign-in: anyone can pick any id. A real shop gives you a ticket from its own login instead.",
                    "这是演示用的登录：任何人都可以填任意用户名。正式网站会由自己的登录系统签发凭证。",
                ),
            ),
            ("signout_button", l.pick("Sign out", "退出")),
            ("lang_switch", l.pick("中文", "English")),
            ("lang_switch_label", l.pick("Switch to Chinese", "切换到英文")),
            ("order_heading", l.pick("Your order", "你的订单")),
            ("footer", l.pick("One per customer. Prices include tax.", "每人限购一件。价格含税。")),
            ("noscript", l.pick("This page needs JavaScript and WebAssembly.", "本页需要 JavaScript 与 WebAssembly。")),
        ]
    }
}

/// A text of the page that changes with its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    // Coarse sale state.
    StateLoading,
    StateUpcoming,
    StateOnSale,
    StateSoldOut,
    /// Sold out until the next batch of a sale released in batches.
    StateBatchSoldOut,
    StateEnded,
    StateUnknownSku,
    StateNoSku,
    StateUnreachable,
    // The buy button.
    ButtonLoading,
    ButtonNotYet,
    ButtonSignInFirst,
    ButtonBuy,
    ButtonSending,
    ButtonGotIt,
    ButtonSoldOut,
    ButtonEnded,
    ButtonUnavailable,
    // Results of a buy, in plain words.
    Won,
    AlreadyWon,
    SoldOut,
    NotStarted,
    Ended,
    Throttled,
    Busy,
    NetworkError,
    SignInAgain,
    UnknownSku,
    Invalid,
    Solving,
    // Sign-in.
    BadUid,
    SignInFailed,
    SignedInAs,
    // Paying.
    PayButton,
    Paying,
    Paid,
    PayExpired,
    PayNotFound,
    PayFailed,
    PayDeadlinePassed,
}

impl Msg {
    pub fn text(self, lang: Lang) -> &'static str {
        use Msg::*;
        let (en, zh) = match self {
            StateLoading => ("Loading…", "加载中…"),
            StateUpcoming => ("Starting soon", "即将开始"),
            StateOnSale => ("On sale now", "正在抢购"),
            StateSoldOut => ("Sold out", "已售罄"),
            StateBatchSoldOut => ("This batch is sold out. More units go on sale soon.", "本批已售罄，下一批即将开售。"),
            StateEnded => ("Sale ended", "活动已结束"),
            StateUnknownSku => ("There is no such sale.", "没有这个活动。"),
            StateNoSku => ("No sale chosen: open a link like /s/phone-1.", "没有指定活动：请打开类似 /s/phone-1 的链接。"),
            StateUnreachable => ("Cannot reach the shop. Retrying…", "无法连接商店，正在重试…"),
            ButtonLoading => ("Please wait", "请稍候"),
            ButtonNotYet => ("Not started yet", "尚未开始"),
            ButtonSignInFirst => ("Sign in to buy", "登录后购买"),
            ButtonBuy => ("Buy now", "立即抢购"),
            ButtonSending => ("Sending…", "提交中…"),
            ButtonGotIt => ("You have one", "已抢到"),
            ButtonSoldOut => ("Sold out", "已售罄"),
            ButtonEnded => ("Sale ended", "已结束"),
            ButtonUnavailable => ("Unavailable", "不可购买"),
            Won => ("You got one! Your order is", "抢到了！订单号"),
            AlreadyWon => ("You already have one. Your order is", "你已经抢到过了。订单号"),
            SoldOut => ("Sold out: every unit is taken. Nothing was charged.", "已售罄：全部被抢光了，没有扣款。"),
            NotStarted => ("The sale has not started yet. Wait for the countdown.", "活动还没开始，请等倒计时结束。"),
            Ended => ("The sale has ended.", "活动已经结束。"),
            Throttled => ("Too many tries. Try again when the button comes back.", "点得太快了。按钮恢复后再试。"),
            Busy => ("The shop is busy and nothing was bought. Try again when the button comes back.", "商店繁忙，这次没有下单。按钮恢复后再试。"),
            NetworkError => ("Your request did not get through. Try again when the button comes back.", "请求没有送达。按钮恢复后再试。"),
            SignInAgain => ("Your sign-in has expired. Please sign in again.", "登录已过期，请重新登录。"),
            UnknownSku => ("There is no such sale.", "没有这个活动。"),
            Invalid => ("Something went wrong with that request. Try again.", "请求出错了，请再试一次。"),
            Solving => ("Checking this is a real browser… (a moment of work for your device, then your request goes on by itself)", "正在验证浏览器……（设备计算片刻后自动继续下单）"),
            BadUid => ("A user id is 1 to 64 letters, digits, _ or -.", "用户名是 1 到 64 个字母、数字、_ 或 -。"),
            SignInFailed => ("Sign-in failed. Try again.", "登录失败，请再试一次。"),
            SignedInAs => ("Signed in as", "已登录"),
            PayButton => ("Pay now", "立即付款"),
            Paying => ("Paying…", "付款中…"),
            Paid => ("Paid. Thank you!", "已付款，谢谢！"),
            PayExpired => ("The time to pay has passed; the unit went back on sale.", "付款时间已过，商品已重新开放抢购。"),
            PayNotFound => ("This order was not found.", "找不到这个订单。"),
            PayFailed => ("Payment did not go through. Try again.", "付款没有成功，请再试一次。"),
            PayDeadlinePassed => ("The time to pay has passed.", "付款时间已过。"),
        };
        lang.pick(en, zh)
    }
}

/// A duration for a countdown: `mm:ss`, `h:mm:ss`, or with days (`2d 03:04:05`, `2天 03:04:05`).
/// Rounds up, so the countdown shows `00:00` only at the moment itself.
pub fn duration(ms: u64, lang: Lang) -> String {
    let s = ms.div_ceil(1000);
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let clock = if d > 0 || h > 0 { format!("{h:02}:{m:02}:{sec:02}") } else { format!("{m:02}:{sec:02}") };
    match (d, lang) {
        (0, _) => clock,
        (d, Lang::En) => format!("{d}d {clock}"),
        (d, Lang::Zh) => format!("{d}天 {clock}"),
    }
}

/// "Starts in …" / "距开始还有 …"
pub fn starts_in(ms: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Starts in {}", duration(ms, lang)),
        Lang::Zh => format!("距开始还有 {}", duration(ms, lang)),
    }
}

/// "Next batch in …" / "距下一批开售还有 …"
pub fn next_batch_in(ms: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Next batch in {}", duration(ms, lang)),
        Lang::Zh => format!("距下一批开售还有 {}", duration(ms, lang)),
    }
}

/// "Ends in …" / "距结束还有 …"
pub fn ends_in(ms: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Ends in {}", duration(ms, lang)),
        Lang::Zh => format!("距结束还有 {}", duration(ms, lang)),
    }
}

/// "Try again in 3 s" / "3 秒后可再试"
pub fn try_again_in(ms: u64, lang: Lang) -> String {
    let s = ms.div_ceil(1000).max(1);
    match lang {
        Lang::En => format!("Try again in {s} s"),
        Lang::Zh => format!("{s} 秒后可再试"),
    }
}

/// "Pay within 14:59" / "请在 14:59 内付款"
pub fn pay_within(ms: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Pay within {}", duration(ms, lang)),
        Lang::Zh => format!("请在 {} 内付款", duration(ms, lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_preferences() {
        assert_eq!(Lang::from_preferences(&["zh-CN", "en"]), Lang::Zh);
        assert_eq!(Lang::from_preferences(&["zh-TW"]), Lang::Zh);
        assert_eq!(Lang::from_preferences(&["zh_Hans"]), Lang::Zh);
        assert_eq!(Lang::from_preferences(&["en-GB", "zh"]), Lang::En);
        assert_eq!(Lang::from_preferences(&["fr-FR", "ZH"]), Lang::Zh, "the first known language decides");
        assert_eq!(Lang::from_preferences(&["fr-FR", "de"]), Lang::En, "English otherwise");
        assert_eq!(Lang::from_preferences::<&str>(&[]), Lang::En);
        assert_eq!(Lang::from_tag("zh;q=0.9"), Some(Lang::Zh));
        assert_eq!(Lang::from_tag("eng"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0, Lang::En), "00:00");
        assert_eq!(duration(1, Lang::En), "00:01", "rounds up");
        assert_eq!(duration(59_001, Lang::En), "01:00");
        assert_eq!(duration(3_600_000, Lang::En), "01:00:00");
        assert_eq!(duration((2 * 86_400 + 3 * 3_600 + 4 * 60 + 5) * 1000, Lang::En), "2d 03:04:05");
        assert_eq!(duration((86_400 + 5) * 1000, Lang::Zh), "1天 00:00:05");
    }

    #[test]
    fn phrases_in_both_languages() {
        assert_eq!(starts_in(12_000, Lang::En), "Starts in 00:12");
        assert_eq!(starts_in(12_000, Lang::Zh), "距开始还有 00:12");
        assert_eq!(try_again_in(2_100, Lang::En), "Try again in 3 s");
        assert_eq!(try_again_in(0, Lang::Zh), "1 秒后可再试");
        assert_eq!(pay_within(899_000, Lang::En), "Pay within 14:59");
        assert_eq!(Msg::ButtonBuy.text(Lang::Zh), "立即抢购");
    }

    #[test]
    fn every_fixed_text_exists_in_both_languages() {
        let en = Lang::En.fixed_texts();
        let zh = Lang::Zh.fixed_texts();
        assert_eq!(en.len(), zh.len());
        for ((ke, te), (kz, tz)) in en.iter().zip(zh.iter()) {
            assert_eq!(ke, kz);
            assert!(!te.is_empty() && !tz.is_empty(), "{ke}");
        }
        let note = en.iter().find(|(k, _)| *k == "signin_note").map(|(_, t)| *t).unwrap_or_default();
        assert!(note.contains("its own login"), "the page says plainly that real shops use their own login");
    }
}
