//! A statement file as it arrives over the network, written to a temporary file as it
//! comes, with its SHA-256, so that a file of the largest size accepted is never in
//! memory. The API and the back-office page both take their uploads through here.

use std::io::Write;
use std::path::Path;

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::secrets::hex;

/// An upload on disk. The file is anonymous: it goes when this is dropped.
#[derive(Debug)]
pub struct SpooledUpload {
    pub file: std::fs::File,
    pub size: u64,
    /// Hex, of the bytes as uploaded.
    pub sha256: String,
}

impl SpooledUpload {
    /// Its bytes, for the uploads small enough to read whole (the SdI's notifications).
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut file = &self.file;
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Why an upload was not taken.
#[derive(Debug)]
pub enum UploadError<E> {
    /// Past the limit: the rest was not read.
    TooLarge,
    /// The stream broke (the client went away, a malformed form).
    Unreadable(E),
    /// The server's disk.
    Io(std::io::Error),
}

/// Writes `stream` to a temporary file in `dir` (the system's temporary directory if
/// `dir` cannot be used), refused past `limit` bytes without reading the rest.
pub async fn spool<B: AsRef<[u8]>, E>(
    mut stream: impl Stream<Item = Result<B, E>> + Unpin,
    limit: usize,
    dir: &Path,
) -> Result<SpooledUpload, UploadError<E>> {
    let file = tempfile::tempfile_in(dir)
        .or_else(|_| tempfile::tempfile())
        .map_err(UploadError::Io)?;
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
    let mut sha256 = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(UploadError::Unreadable)?;
        let chunk = chunk.as_ref();
        size += chunk.len() as u64;
        if size > limit as u64 {
            return Err(UploadError::TooLarge);
        }
        sha256.update(chunk);
        // A write of a chunk lands in the page cache: short enough for an async worker.
        writer.write_all(chunk).map_err(UploadError::Io)?;
    }
    let file = writer
        .into_inner()
        .map_err(|error| UploadError::Io(error.into_error()))?;
    Ok(SpooledUpload {
        file,
        size,
        sha256: hex(&sha256.finalize()),
    })
}
