//! The filter's plugin configuration parser: any bytes either parse into a valid config or give
//! an error; never a panic (a panic in `on_configure` would fail the VM).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = seckill_edge::Config::from_json(data) {
        assert!(cfg.validate().is_ok(), "from_json returned a config that does not validate");
    }
});
