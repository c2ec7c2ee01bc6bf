//! Deterministic cpio "newc" archives (the initramfs format the Linux kernel unpacks).
//!
//! Every entry header is `070701` followed by 13 fields of 8 uppercase hex digits (ino, mode,
//! uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize,
//! check), then the NUL-terminated name padded to a multiple of 4, then the data padded to a
//! multiple of 4. The archive ends with the entry `TRAILER!!!`.
//!
//! Nothing about the build machine leaks in: entries are sorted by name (byte order, so a
//! directory always precedes its contents), inode numbers count up from 1 in that order, owners
//! are 0:0, the modification time is 0, device numbers are 0, modes are the ones given, and
//! missing parent directories are added with mode 0755.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::eif::Chunk;

const NEWC_MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
/// Mode of the parent directories added automatically.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

/// Why an entry cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpioError {
    /// The name is empty, absolute, has an empty, `.` or `..` component, or a NUL byte.
    #[error("invalid archive path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name is already in the archive (as a file or a directory).
    #[error("{path:?} is already in the archive")]
    Duplicate {
        /// The path given.
        path: String,
    },
    /// A file is placed below another file.
    #[error("{path:?} would be inside the file {parent:?}")]
    ParentIsFile {
        /// The path given.
        path: String,
        /// The file in the way.
        parent: String,
    },
    /// Mode bits beyond permissions (setuid, setgid, sticky are refused too).
    #[error("mode {mode:o} of {path:?} must be permission bits only (at most 0777)")]
    InvalidMode {
        /// The path given.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// A file is larger than newc's 32-bit size field.
    #[error("{path:?} is {len} bytes; newc archives hold files below 4 GiB")]
    FileTooLarge {
        /// The path given.
        path: String,
        /// Its length.
        len: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Directory,
    File(Chunk),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    mode: u32,
    node: Node,
}

/// A newc archive being assembled; [`CpioBuilder::finish`] lays it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpioBuilder {
    entries: BTreeMap<String, Entry>,
}

fn check_path(path: &str) -> Result<(), CpioError> {
    let invalid = |reason| CpioError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("empty"));
    }
    if path.starts_with('/') {
        return Err(invalid("absolute (archive paths are relative to the root)"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid("has an empty, `.` or `..` component"));
    }
    if path == TRAILER {
        return Err(invalid("is the trailer's name"));
    }
    Ok(())
}

fn check_mode(path: &str, mode: u32) -> Result<(), CpioError> {
    if mode > 0o777 {
        return Err(CpioError::InvalidMode {
            path: path.to_string(),
            mode,
        });
    }
    Ok(())
}

impl CpioBuilder {
    /// An empty archive.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (its missing parents are added with mode 0755).
    pub fn add_directory(&mut self, path: &str, mode: u32) -> Result<&mut Self, CpioError> {
        self.insert(path, mode, Node::Directory)
    }

    /// Adds a file whose bytes are in memory.
    pub fn add_bytes(
        &mut self,
        path: &str,
        mode: u32,
        bytes: Vec<u8>,
    ) -> Result<&mut Self, CpioError> {
        self.insert(path, mode, Node::File(Chunk::Bytes(bytes)))
    }

    /// Adds a file streamed from `source` when the image is written; `len` is its length now.
    pub fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        source: PathBuf,
        len: u64,
    ) -> Result<&mut Self, CpioError> {
        self.insert(path, mode, Node::File(Chunk::File { path: source, len }))
    }

    fn insert(&mut self, path: &str, mode: u32, node: Node) -> Result<&mut Self, CpioError> {
        check_path(path)?;
        check_mode(path, mode)?;
        if let Node::File(chunk) = &node
            && chunk.len() > u64::from(u32::MAX)
        {
            return Err(CpioError::FileTooLarge {
                path: path.to_string(),
                len: chunk.len(),
            });
        }
        if self.entries.contains_key(path) {
            return Err(CpioError::Duplicate {
                path: path.to_string(),
            });
        }
        // Every ancestor must be (or become) a directory.
        let mut ancestors = Vec::new();
        let mut rest = path;
        while let Some((parent, _)) = rest.rsplit_once('/') {
            ancestors.push(parent.to_string());
            rest = parent;
        }
        for parent in &ancestors {
            if let Some(Entry {
                node: Node::File(_),
                ..
            }) = self.entries.get(parent)
            {
                return Err(CpioError::ParentIsFile {
                    path: path.to_string(),
                    parent: parent.clone(),
                });
            }
        }
        if matches!(node, Node::File(_)) && self.entries.keys().any(|k| is_below(k, path)) {
            return Err(CpioError::Duplicate {
                path: path.to_string(),
            });
        }
        for parent in ancestors {
            self.entries.entry(parent).or_insert(Entry {
                mode: DEFAULT_DIR_MODE,
                node: Node::Directory,
            });
        }
        self.entries.insert(path.to_string(), Entry { mode, node });
        Ok(self)
    }

    /// The names in the archive, in archive order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Lays the archive out: headers and padding in memory, file contents as they were given
    /// (files on disk are streamed when the image is written).
    #[must_use]
    pub fn finish(&self) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let mut pending = Vec::new();
        for (index, (name, entry)) in self.entries.iter().enumerate() {
            let ino = index as u32 + 1;
            match &entry.node {
                Node::Directory => {
                    push_header(&mut pending, name, ino, S_IFDIR | entry.mode, 2, 0);
                }
                Node::File(chunk) => {
                    let len = chunk.len() as u32;
                    push_header(&mut pending, name, ino, S_IFREG | entry.mode, 1, len);
                    match chunk {
                        Chunk::Bytes(bytes) => pending.extend_from_slice(bytes),
                        Chunk::File { .. } => {
                            if !pending.is_empty() {
                                chunks.push(Chunk::Bytes(std::mem::take(&mut pending)));
                            }
                            chunks.push(chunk.clone());
                        }
                    }
                    pending.extend_from_slice(&[0u8; 3][..padding(chunk.len())]);
                }
            }
        }
        push_header(&mut pending, TRAILER, 0, 0, 1, 0);
        chunks.push(Chunk::Bytes(pending));
        chunks
    }
}

/// Whether `candidate` lies strictly below the directory `dir`.
fn is_below(candidate: &str, dir: &str) -> bool {
    candidate.len() > dir.len() + 1
        && candidate.starts_with(dir)
        && candidate.as_bytes()[dir.len()] == b'/'
}

/// Bytes needed to pad `len` to a multiple of 4.
fn padding(len: u64) -> usize {
    ((4 - len % 4) % 4) as usize
}

fn push_header(out: &mut Vec<u8>, name: &str, ino: u32, mode: u32, nlink: u32, filesize: u32) {
    use std::fmt::Write as _;
    let namesize = name.len() as u32 + 1;
    let mut head = String::with_capacity(110);
    head.push_str(NEWC_MAGIC);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    // namesize, check
    for field in [ino, mode, 0, 0, nlink, 0, filesize, 0, 0, 0, 0, namesize, 0] {
        let _ = write!(head, "{field:08X}");
    }
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    // The header (110 bytes) plus the name is padded to a multiple of 4.
    out.extend_from_slice(&[0u8; 3][..padding(110 + u64::from(namesize))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(chunks: &[Chunk]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                Chunk::Bytes(bytes) => out.extend_from_slice(bytes),
                Chunk::File { path, .. } => out.extend(std::fs::read(path).unwrap()),
            }
        }
        out
    }

    #[test]
    fn one_file_byte_for_byte() {
        let mut archive = CpioBuilder::new();
        archive.add_bytes("a", 0o644, b"hi".to_vec()).unwrap();
        let bytes = bytes_of(&archive.finish());
        let file_header = concat!(
            "070701", "00000001", "000081A4", "00000000", "00000000", "00000001", "00000000",
            "00000002", "00000000", "00000000", "00000000", "00000000", "00000002", "00000000",
        );
        let trailer_header = concat!(
            "070701", "00000000", "00000000", "00000000", "00000000", "00000001", "00000000",
            "00000000", "00000000", "00000000", "00000000", "00000000", "0000000B", "00000000",
        );
        let mut expected = Vec::new();
        expected.extend_from_slice(file_header.as_bytes());
        // 110 + 2 = 112: the name needs no padding; "hi" gets 2 bytes.
        expected.extend_from_slice(b"a\0hi\0\0");
        expected.extend_from_slice(trailer_header.as_bytes());
        // 110 + 11 = 121: 3 bytes of padding.
        expected.extend_from_slice(b"TRAILER!!!\0\0\0\0");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn order_parents_and_inodes_do_not_depend_on_insertion_order() {
        let mut first = CpioBuilder::new();
        first.add_bytes("rootfs/b/file", 0o644, vec![1]).unwrap();
        first.add_directory("rootfs/a", 0o700).unwrap();
        first.add_bytes("cmd", 0o644, b"x".to_vec()).unwrap();
        let mut second = CpioBuilder::new();
        second.add_bytes("cmd", 0o644, b"x".to_vec()).unwrap();
        second.add_directory("rootfs/a", 0o700).unwrap();
        second.add_bytes("rootfs/b/file", 0o644, vec![1]).unwrap();
        assert_eq!(first.finish(), second.finish());
        assert_eq!(
            first.names().collect::<Vec<_>>(),
            ["cmd", "rootfs", "rootfs/a", "rootfs/b", "rootfs/b/file"]
        );
    }

    #[test]
    fn invalid_entries_are_refused() {
        let mut archive = CpioBuilder::new();
        for bad in [
            "", "/abs", "a//b", "a/./b", "../x", "a/..", "nul\0", TRAILER,
        ] {
            assert!(
                matches!(
                    archive.add_bytes(bad, 0o644, vec![]),
                    Err(CpioError::InvalidPath { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            archive.add_bytes("x", 0o4755, vec![]),
            Err(CpioError::InvalidMode { .. })
        ));
        archive.add_bytes("file", 0o644, vec![]).unwrap();
        assert!(matches!(
            archive.add_bytes("file", 0o644, vec![]),
            Err(CpioError::Duplicate { .. })
        ));
        assert!(matches!(
            archive.add_bytes("file/below", 0o644, vec![]),
            Err(CpioError::ParentIsFile { .. })
        ));
        archive.add_bytes("dir/inner", 0o644, vec![]).unwrap();
        assert!(matches!(
            archive.add_bytes("dir", 0o644, vec![]),
            Err(CpioError::Duplicate { .. })
        ));
        assert!(matches!(
            archive.add_file("big", 0o644, PathBuf::from("/dev/null"), 1 << 32),
            Err(CpioError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn streamed_files_keep_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model");
        std::fs::write(&path, b"12345").unwrap();
        let mut archive = CpioBuilder::new();
        archive.add_file("m", 0o444, path.clone(), 5).unwrap();
        archive.add_bytes("n", 0o444, b"z".to_vec()).unwrap();
        let chunks = archive.finish();
        assert!(chunks.contains(&Chunk::File { path, len: 5 }));
        let bytes = bytes_of(&chunks);
        assert_eq!(bytes.len() % 4, 0);
        // The second header starts right after "12345" and 3 bytes of padding.
        let second = bytes
            .windows(6)
            .enumerate()
            .filter(|(_, w)| *w == b"070701")
            .map(|(i, _)| i)
            .nth(1)
            .unwrap();
        assert_eq!(&bytes[second - 8..second], b"12345\0\0\0");
    }
}
