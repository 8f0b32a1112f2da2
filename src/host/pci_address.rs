//! PCI addresses in the kernel's `DDDD:BB:SS.F` form.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A PCI function address: domain, bus, slot (device) and function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub domain: u32,
    pub bus: u8,
    pub slot: u8,
    pub function: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a PCI address: {why}; write e.g. 0000:01:00.0")]
pub struct ParseAddressError {
    input: String,
    why: &'static str,
}

impl PciAddress {
    /// Two functions of the same physical card share domain, bus and slot.
    pub fn same_slot(&self, other: &PciAddress) -> bool {
        self.domain == other.domain && self.bus == other.bus && self.slot == other.slot
    }
}

/// The PCI function nearest the end of a resolved sysfs path (the device a block device,
/// NIC or framebuffer hangs off).
pub fn nearest_in_path(path: &std::path::Path) -> Option<PciAddress> {
    path.components()
        .rev()
        .find_map(|c| c.as_os_str().to_str()?.parse().ok())
}

impl FromStr for PciAddress {
    type Err = ParseAddressError;

    /// Accepts `DDDD:BB:SS.F` and the short `BB:SS.F` (domain 0), as lspci prints them.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why| ParseAddressError {
            input: input.chars().take(64).collect(),
            why,
        };
        let (rest, function) = input
            .rsplit_once('.')
            .ok_or_else(|| fail("missing '.' before the function"))?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [d, b, s] => (*d, *b, *s),
            [b, s] => ("0", *b, *s),
            _ => return Err(fail("expected domain:bus:slot.function")),
        };
        let hex = |s: &str, max_digits: usize, what| {
            if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(fail(what));
            }
            u32::from_str_radix(s, 16).map_err(|_| fail(what))
        };
        let domain = hex(domain, 8, "bad domain")?;
        let bus = hex(bus, 2, "bad bus")?;
        let slot = hex(slot, 2, "bad slot")?;
        let function = hex(function, 1, "bad function")?;
        if slot > 0x1f {
            return Err(fail("slot is above 1f"));
        }
        if function > 7 {
            return Err(fail("function is above 7"));
        }
        Ok(PciAddress {
            domain,
            bus: bus as u8,
            slot: slot as u8,
            function: function as u8,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

impl Serialize for PciAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_and_short_forms() {
        let a: PciAddress = "0000:01:00.1".parse().unwrap();
        assert_eq!((a.domain, a.bus, a.slot, a.function), (0, 1, 0, 1));
        let b: PciAddress = "0a:1f.7".parse().unwrap();
        assert_eq!((b.domain, b.bus, b.slot, b.function), (0, 0x0a, 0x1f, 7));
        assert_eq!(b.to_string(), "0000:0a:1f.7");
        let c: PciAddress = "10000:e3:00.0".parse().unwrap();
        assert_eq!(c.to_string(), "10000:e3:00.0");
    }

    #[test]
    fn rejects_out_of_range_and_junk_with_a_message() {
        for bad in [
            "",
            ".",
            "0000:01:00",
            "0000:01:20.0",
            "0000:01:00.8",
            "0000:100:00.0",
            "zz:00.0",
            "0000:01:00.0.0",
            "0000:-1:00.0",
            "0000:01:00.+1",
            "::.",
        ] {
            let err = bad.parse::<PciAddress>().unwrap_err();
            assert!(
                err.to_string().contains("is not a PCI address"),
                "{bad}: {err}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(s in "\\PC{0,40}") {
            let _ = s.parse::<PciAddress>();
        }

        #[test]
        fn display_round_trips(d in 0u32..0x1_0000, b: u8, s in 0u8..32, f in 0u8..8) {
            let a = PciAddress { domain: d, bus: b, slot: s, function: f };
            prop_assert_eq!(a.to_string().parse::<PciAddress>().unwrap(), a);
        }

        #[test]
        fn near_misses_never_panic(s in "[0-9a-fA-F:.]{0,20}") {
            if let Ok(a) = s.parse::<PciAddress>() {
                prop_assert!(a.slot < 32 && a.function < 8);
            }
        }
    }
}
