//! Image folders as tar streams between nodes: `openmosix-agent images send|receive`.

use std::fs;

use super::{Migrator, dir_bytes, io};
use crate::backend::stream;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

impl Migrator {
    /// Writes image `id` as a tar stream (for `openmosix-agent images send`).
    pub fn send(&self, id: &str, out: impl std::io::Write) -> Result<(), AgentError> {
        let dir = self.image_dir(id)?;
        if !dir.is_dir() {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("no image {id}"),
            ));
        }
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        // First entry: the size, so that the receiver can cap the stream.
        let size = dir_bytes(&dir).to_string();
        small_entry(&mut tar, stream::SIZE_ENTRY, size.as_bytes())
            .map_err(|e| io("sending", &dir, &e))?;
        tar.append_dir_all(".", &dir)
            .map_err(|e| io("sending", &dir, &e))?;
        // Last entry: proof for the receiver that the stream was not cut short.
        small_entry(&mut tar, stream::COMPLETE, b"ok").map_err(|e| io("sending", &dir, &e))?;
        tar.into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(|e| io("sending", &dir, &e))
    }

    /// Reads image `id` from a tar stream (for `openmosix-agent images receive`), checked
    /// entry by entry as [`stream::unpack`] says. A cut or refused stream leaves no image
    /// behind.
    ///
    /// With `onto_pages` the stream is the rest of a disk-less dump: the pages a page
    /// server wrote into the image are kept and joined to it, where they are. Else the
    /// image goes into memory when `size` (the sender's estimate) fits there.
    pub fn receive(
        &self,
        id: &str,
        input: impl std::io::Read,
        onto_pages: bool,
        size: Option<u64>,
    ) -> Result<u64, AgentError> {
        self.image_dir(id)?;
        // Claimed while it arrives, so that no agent sweeps it away meanwhile.
        let _claim = self.handoffs.claim(id)?;
        let aside = if onto_pages {
            let aside = self.set_pages_aside(id)?;
            if aside.is_none() {
                return Err(AgentError::new(
                    ErrorKind::MigrationFailed,
                    format!("no pages of image {id} arrived here"),
                ));
            }
            aside
        } else {
            None
        };
        self.remove(id);
        let dir = self.place(id, size, aside.as_deref())?;
        let bytes = stream::unpack(input, &dir)
            .map_err(|m| AgentError::new(ErrorKind::MigrationFailed, m))?;
        if !dir.join("dump").is_dir() {
            let _ = fs::remove_dir_all(&dir);
            return Err(AgentError::new(
                ErrorKind::MigrationFailed,
                "the image stream holds no final dump",
            ));
        }
        if let Some(aside) = aside
            && let Err(e) = self.take_pages_back(id, &aside)
        {
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_dir_all(&aside);
            return Err(e);
        }
        Ok(bytes)
    }
}

/// Appends a short file entry named `name` to `tar`.
fn small_entry<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::procfs::ProcFs;
    use std::path::PathBuf;

    #[test]
    fn tar_round_trip_and_cut_stream() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let src = Migrator::new(None, String::new(), a.path(), ProcFs::new("/proc"));
        let dst = Migrator::new(None, String::new(), b.path(), ProcFs::new("/proc"));
        let dir = src.image_dir("1-a").unwrap();
        fs::create_dir_all(dir.join("1")).unwrap();
        fs::create_dir_all(dir.join("dump")).unwrap();
        fs::write(dir.join("dump/pages-1.img"), vec![7u8; 8192]).unwrap();
        std::os::unix::fs::symlink("../1", dir.join("dump/parent")).unwrap();
        let mut stream = Vec::new();
        src.send("1-a", &mut stream).unwrap();
        let bytes = dst.receive("1-a", &stream[..], false, None).unwrap();
        assert!(bytes >= 8192);
        let got = dst.image_dir("1-a").unwrap();
        assert_eq!(
            fs::read(got.join("dump/pages-1.img")).unwrap(),
            vec![7u8; 8192]
        );
        assert_eq!(
            fs::read_link(got.join("dump/parent")).unwrap(),
            PathBuf::from("../1")
        );
        // A stream cut anywhere leaves nothing behind.
        for cut in [stream.len() / 3, stream.len() - 1536, 512] {
            assert!(
                dst.receive("2-b", &stream[..cut], false, None).is_err(),
                "cut at {cut}"
            );
            assert!(!dst.image_dir("2-b").unwrap().exists());
        }
    }
}
