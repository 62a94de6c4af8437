//! Secrets the installation makes for itself: random bytes, and keys kept in the data
//! directory when configuration does not provide them.

use std::io::Write;
use std::path::Path;

pub const MIN_SECRET_BYTES: usize = 32;

/// Bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret: from configuration if given, else from `<data dir>/<file>`, created on first
/// start with 256 random bits and permissions 0600. Several processes sharing one data
/// directory (or started at once) agree on it: the file is created with `create_new`, and
/// whoever loses the race reads the winner's.
pub fn load_or_create(
    configured: Option<&str>,
    data_dir: &Path,
    file: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut handle) => {
            handle.write_all(hex(&random_bytes::<32>()).as_bytes())?;
            handle.sync_all()?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
    }
    let secret = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let secret = secret.trim();
    anyhow::ensure!(
        secret.len() >= MIN_SECRET_BYTES,
        "{} holds fewer than {MIN_SECRET_BYTES} characters",
        path.display()
    );
    Ok(secret.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(None, dir.path(), "k").unwrap();
        let second = load_or_create(None, dir.path(), "k").unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        assert_ne!(first, load_or_create(None, dir.path(), "other").unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured =
            load_or_create(Some("configured-secret-configured-secret"), dir.path(), "k").unwrap();
        assert_eq!(configured, b"configured-secret-configured-secret");
    }
}
