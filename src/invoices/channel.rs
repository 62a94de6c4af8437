//! The channels that take a document's file to the SdI: behind [`SdiChannel`], the
//! embedded default writes each file into a directory (`file`), production sends it by
//! PEC (`pec`). The transmitter (`transmitter.rs`) drives either.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::mail::smtp::{SmtpClient, SmtpSettings};

/// The SdI's PEC address for a first transmission; its first answer names the address to
/// use from then on (`RINNOVO_SDI_ADDRESS`).
pub const FIRST_SDI_ADDRESS: &str = "sdi01@pec.fatturapa.it";

/// A file to hand to the SdI.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingFile<'a> {
    /// The transmission's id: the same on every attempt, so a copy sent again is
    /// recognisably the same message.
    pub id: &'a str,
    /// Its SdI name (`IT01234567897_00001.xml`).
    pub file_name: &'a str,
    pub xml: &'a str,
    /// The brand's PEC mailbox, sender on the PEC channel.
    pub brand_pec_address: &'a str,
}

/// A way to the SdI. `send` answers the channel's reference of the file (the path it
/// was written to, the PEC message's Message-ID), or why it could not take it.
pub trait SdiChannel: Send + 'static {
    /// `file` or `pec`: recorded with each attempt, and a metrics label.
    fn name(&self) -> &'static str;

    fn send(
        &mut self,
        file: &OutgoingFile<'_>,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// Which channel the files take, from `RINNOVO_SDI_CHANNEL`.
#[derive(Debug, Clone)]
pub enum ChannelSettings {
    /// Files in this directory (`$RINNOVO_DATA_DIR/sdi/outbox`).
    File(PathBuf),
    Pec {
        smtp: SmtpSettings,
        /// The SdI's PEC address.
        sdi_address: String,
    },
}

/// Writes each file to `<dir>/<SdI file name>`, for an operator or another system to take
/// to the SdI.
pub struct FileChannel {
    dir: PathBuf,
}

impl FileChannel {
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl SdiChannel for FileChannel {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn send(&mut self, file: &OutgoingFile<'_>) -> Result<String, String> {
        let (dir, id, name, xml) = (
            self.dir.clone(),
            file.id.to_owned(),
            file.file_name.to_owned(),
            file.xml.to_owned(),
        );
        tokio::task::spawn_blocking(move || write_once(&dir, &id, &name, &xml))
            .await
            .map_err(|e| e.to_string())?
    }
}

/// Writes `content` to `dir/name` atomically and never over another file: it is written
/// and synced under a temporary name, then linked to its name, which fails if the name
/// exists (a rename would replace it). A file already there with the same content is the
/// same file sent before (a sender that stopped before recording it): done. Different
/// content under the same SdI name is an error for the back-office to look at.
fn write_once(dir: &Path, id: &str, name: &str, content: &str) -> Result<String, String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("'{name}' is not a file name"));
    }
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.{id}.tmp"));
    let written = (|| -> std::io::Result<()> {
        let mut handle = std::fs::File::create(&temporary)?;
        handle.write_all(content.as_bytes())?;
        handle.sync_all()?;
        std::fs::hard_link(&temporary, &target)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let there = std::fs::read(&target)
                .map_err(|e| format!("cannot read {}: {e}", target.display()))?;
            if there != content.as_bytes() {
                return Err(format!(
                    "{} already exists with a different content",
                    target.display()
                ));
            }
        }
        Err(e) => return Err(format!("cannot write {}: {e}", target.display())),
    }
    Ok(target.display().to_string())
}

/// Sends each file as the attachment of a PEC message from the brand's PEC mailbox to
/// the SdI, through the PEC provider's SMTP server (one session, reused).
pub struct PecChannel {
    client: SmtpClient,
    sdi_address: String,
}

impl PecChannel {
    pub fn new(smtp: SmtpSettings, sdi_address: String) -> Self {
        Self {
            client: SmtpClient::new(smtp),
            sdi_address,
        }
    }
}

impl SdiChannel for PecChannel {
    fn name(&self) -> &'static str {
        "pec"
    }

    async fn send(&mut self, file: &OutgoingFile<'_>) -> Result<String, String> {
        let (message, message_id) = pec_message(file, &self.sdi_address)?;
        self.client.send(&message).await?;
        Ok(message_id)
    }
}

/// The PEC message of a transmission: one file, attached under its SdI name as
/// `application/xml`, in base64 so that its bytes arrive exactly as issued (no line-ending
/// or encoding changes on the way). The SdI reads the attachment only; subject and text
/// are free, so the subject is the file name, which is what the operator searches the
/// mailbox for when the SdI's receipts come back.
fn pec_message(file: &OutgoingFile<'_>, sdi_address: &str) -> Result<(Message, String), String> {
    if file.brand_pec_address.is_empty() {
        return Err("the brand has no PEC address (sdi_pec_address in seeds/brands.json)".into());
    }
    let from: Mailbox = file
        .brand_pec_address
        .parse()
        .map_err(|e| format!("the brand's PEC address: {e}"))?;
    let to: Mailbox = sdi_address
        .parse()
        .map_err(|e| format!("the SdI address: {e}"))?;
    let message_id = format!("<{}@{}>", file.id, from.email.domain());
    let text = format!(
        "Trasmissione al Sistema di Interscambio del file {}.\n",
        file.file_name
    );
    let content_type = ContentType::parse("application/xml").expect("a valid content type");
    let content = Body::new_with_encoding(
        file.xml.as_bytes().to_vec(),
        ContentTransferEncoding::Base64,
    )
    .map_err(|_| "the file cannot be encoded".to_owned())?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(message_id.clone()))
        .subject(file.file_name)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(text))
                .singlepart(Attachment::new(file.file_name.to_owned()).body(content, content_type)),
        )
        .map_err(|e| e.to_string())?;
    Ok((message, message_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_once(dir.path(), "t1", "IT1_00001.xml", "<a/>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<a/>");
        assert_eq!(
            write_once(dir.path(), "t1", "IT1_00001.xml", "<a/>").unwrap(),
            path
        );
        let different = write_once(dir.path(), "t2", "IT1_00001.xml", "<b/>").unwrap_err();
        assert!(different.contains("different content"), "{different}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<a/>");
        assert!(write_once(dir.path(), "t3", "../x.xml", "<a/>").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
