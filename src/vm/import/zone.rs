//! Memory zones in an imported `VmConfig`: the one zone on a host node that phyllome's
//! `memory.host_numa_node` stands for, and the refusal of any other layout, by field.

use serde_json::{json, Map, Value};

use super::super::bytesize::ByteSize;
use super::super::spec::Memory;
use super::Importer;

impl Importer {
    /// Reads `memory` laid out in zones into `mem`; false when it has none.
    pub(super) fn memory_zone(&mut self, m: &Map<String, Value>, mem: &mut Memory) -> bool {
        let Some(zone) = self.zone(m) else {
            return false;
        };
        // Beside zones CH takes the zones' flags only: one set at the top did nothing.
        for key in ["hugepages", "shared"] {
            if self.boolean(m, "memory", key) {
                self.err(
                    &format!("memory.{key}"),
                    "true beside memory zones, where Cloud Hypervisor ignores it; set it on the zone",
                );
            }
        }
        // One zone on a host node is phyllome's `host_numa_node`: its flags are the VM's.
        let at = "memory.zones[0]";
        match self.uint(zone, at, "size") {
            Some(n) => mem.size = ByteSize(n),
            None => self.err("memory.zones[0].size", "missing"),
        }
        mem.hugepages = self.boolean(zone, at, "hugepages");
        mem.hugepage_size = self.uint(zone, at, "hugepage_size").map(ByteSize);
        mem.shared = self.boolean(zone, at, "shared");
        mem.host_numa_node = self
            .uint(zone, "memory.zones[0]", "host_numa_node")
            .and_then(|n| u32::try_from(n).ok());
        true
    }

    /// The one memory zone phyllome can carry (with `memory.size` 0), if `m` has zones.
    fn zone<'a>(&mut self, m: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
        let zones = m.get("zones").filter(|z| !z.is_null())?;
        let at = "memory.zones";
        let (Some([zone]), Some(0)) = (
            zones.as_array().map(Vec::as_slice),
            m.get("size").and_then(Value::as_u64),
        ) else {
            if zones.as_array().is_some_and(Vec::is_empty) {
                return None;
            }
            self.err(at, "phyllome carries one memory zone on a host node (memory.size 0 and one zone); split the VM's memory by hand");
            return None;
        };
        let zone = self.object(zone, "memory.zones[0]")?;
        let defaults = [
            ("mergeable", json!(false)),
            ("prefault", json!(false)),
            ("reserve", json!(false)),
        ];
        self.rest(
            zone,
            "memory.zones[0]",
            &[
                "size",
                "hugepages",
                "hugepage_size",
                "shared",
                "host_numa_node",
                "id",
            ],
            &defaults,
        );
        Some(zone)
    }
}
