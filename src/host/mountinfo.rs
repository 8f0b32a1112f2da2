//! `/proc/self/mountinfo`, the kernel's table of this process's mounts (proc(5)): one line
//! per mount, `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
//! The kernel writes space, tab, newline and backslash in paths as `\ooo`; every text field
//! here is unescaped, so a mount point with a space reads as the path it is.

/// Where the table is, relative to a root.
pub const PATH: &str = "proc/self/mountinfo";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    /// The device number of the filesystem (`st_dev`); 0 as major for anonymous devices such
    /// as btrfs subvolumes, tmpfs, overlay.
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem that is mounted (not `/` for bind mounts).
    pub root: String,
    /// Where it is mounted.
    pub point: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
    pub fstype: String,
    /// The device or name it was mounted from (`/dev/sda2`, `tmpfs`).
    pub source: String,
    /// Per-superblock options (`rw,upperdir=...`); empty when the kernel wrote none.
    pub super_options: String,
}

impl Mount {
    /// `MAJ:MIN`, as `sys/dev/block/` names devices.
    pub fn dev_no(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

/// The mounts of a mountinfo text, in its order (later lines are on top of earlier ones at
/// the same point); lines that are not mountinfo are left out.
pub fn parse(mountinfo: &str) -> Vec<Mount> {
    mountinfo.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    // Optional fields (`shared:1`, `master:2`) sit between the options and the `-`.
    let sep = fields.iter().position(|f| *f == "-")?;
    let [id, parent, dev, root, point, options, ..] = fields.get(..sep)? else {
        return None;
    };
    let (major, minor) = dev.split_once(':')?;
    let mut right = fields.get(sep + 1..)?.iter();
    Some(Mount {
        id: id.parse().ok()?,
        parent: parent.parse().ok()?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: unescape(root),
        point: unescape(point),
        options: (*options).to_string(),
        fstype: unescape(right.next()?),
        source: unescape(right.next()?),
        super_options: right.next().map_or_else(String::new, |s| unescape(s)),
    })
}

/// The mount holding `path`: the longest mount point that is `path` or one of its parent
/// directories (`/var/lib/phyllome2` does not hold `/var/lib/phyllome`), the later one when
/// several are stacked there.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let under = |point: &str| {
        let point = point.trim_end_matches('/');
        point.is_empty()
            || path == point
            || path
                .strip_prefix(point)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| under(&m.point))
        .max_by_key(|(i, m)| (m.point.trim_end_matches('/').len(), *i))
        .map(|(_, m)| m)
}

/// The topmost mount exactly at `point` (the last line that names it).
pub fn mounted_at<'a>(mounts: &'a [Mount], point: &str) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.point == point)
}

/// Undoes the kernel's `\ooo` escapes; bytes that are not valid UTF-8 afterwards become
/// U+FFFD.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = (b[i] == b'\\')
            .then(|| b.get(i + 1..i + 4))
            .flatten()
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match oct {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_with_optional_fields_before_the_separator() {
        let m = parse(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n",
        );
        assert_eq!(
            m,
            vec![Mount {
                id: 36,
                parent: 35,
                major: 98,
                minor: 0,
                root: "/mnt1".into(),
                point: "/mnt2".into(),
                options: "rw,noatime".into(),
                fstype: "ext3".into(),
                source: "/dev/root".into(),
                super_options: "rw,errors=continue".into(),
            }]
        );
        assert_eq!(m[0].dev_no(), "98:0");
        // No optional field at all.
        let m = parse("1 0 8:2 / / rw - ext4 /dev/sda2 rw\n");
        assert_eq!(
            (m[0].point.as_str(), m[0].source.as_str()),
            ("/", "/dev/sda2")
        );
    }

    #[test]
    fn escapes_are_undone_in_paths_and_sources() {
        let m = parse(
            "5 1 0:50 /a\\134b /srv/my\\040disk\\011x rw shared:3 - btrfs /dev/disk/by-label/My\\040Data rw,subvol=/a\\040b\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].root, "/a\\b");
        assert_eq!(m[0].point, "/srv/my disk\tx");
        assert_eq!(m[0].source, "/dev/disk/by-label/My Data");
        assert_eq!(m[0].super_options, "rw,subvol=/a b");
        // A backslash not followed by three octal digits stays.
        assert_eq!(unescape("a\\09b\\"), "a\\09b\\");
        assert_eq!(unescape("\\012"), "\n");
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = "garbage\n\
            \n\
            - - -\n\
            1 0 8:2 / rw - ext4 /dev/sda2 rw\n\
            x 0 8:2 / / rw - ext4 /dev/sda2 rw\n\
            1 0 8-2 / / rw - ext4 /dev/sda2 rw\n\
            1 0 8:2 / / rw - ext4\n\
            1 0 8:2 / / rw - ext4 /dev/sda2\n";
        let m = parse(text);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].super_options, "");
    }

    #[test]
    fn the_longest_containing_mount_point_wins_not_a_longer_sibling() {
        let text = "1 0 8:2 / / rw - ext4 /dev/sda2 rw\n\
            2 1 0:30 / /var rw - tmpfs tmpfs rw\n\
            3 1 0:31 / /var/lib/phyllome2 rw - ext4 /dev/sdb1 rw\n\
            4 2 8:3 / /var rw - xfs /dev/sda3 rw\n\
            5 1 8:4 / /var/lib/phyllome/ rw - ext4 /dev/sdc1 rw\n";
        let mounts = parse(text);
        let source = |p: &str| mount_of(&mounts, p).map(|m| m.source.as_str());
        // /var/lib/phyllome2 is a sibling, not a parent; the xfs /var is on top of the tmpfs.
        assert_eq!(source("/var/lib/phyllome2x"), Some("/dev/sda3"));
        assert_eq!(source("/var/lib/phyllome"), Some("/dev/sdc1"));
        assert_eq!(source("/var/lib/phyllome/vms"), Some("/dev/sdc1"));
        assert_eq!(source("/var/lib/phyllome2/a"), Some("/dev/sdb1"));
        assert_eq!(source("/etc"), Some("/dev/sda2"));
        assert_eq!(mount_of(&[], "/"), None);
        assert_eq!(
            mounted_at(&mounts, "/var").map(|m| m.id),
            Some(4),
            "the topmost at a point"
        );
        assert_eq!(mounted_at(&mounts, "/var/lib"), None);
    }
}
