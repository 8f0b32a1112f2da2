//! Start latency through phyllome next to the raw `vm.create` + `vm.boot` calls.
fn main() {}
