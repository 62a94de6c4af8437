//! Documents as downloads: a FatturaPA file, a courtesy copy, a file on disk streamed a
//! piece at a time. The API and the pages answer with the same.

use std::fs::File;
use std::io::Read;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;

use crate::invoices::courtesy::CourtesyCopy;

/// A FatturaPA file as a download named as the SdI names it.
pub fn xml_download(file_name: &str, xml: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(xml)
}

/// A courtesy copy as a download.
pub fn pdf_download(copy: CourtesyCopy) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", copy.file_name),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(copy.pdf)
}

/// A file on disk as a download, read a piece at a time on the blocking pool, so the
/// response takes no more memory than one piece however large the file.
pub fn file_download(file: File, content_type: &str, name: &str) -> HttpResponse {
    const PIECE: usize = 64 * 1024;
    let pieces = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = web::block(move || {
            let mut piece = vec![0; PIECE];
            let n = file.read(&mut piece)?;
            piece.truncate(n);
            Ok::<_, std::io::Error>((file, piece))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read);
        match read {
            Ok((_, piece)) if piece.is_empty() => None,
            Ok((file, piece)) => Some((Ok(Bytes::from(piece)), Some(file))),
            Err(error) => {
                tracing::error!(%error, "reading a download failed");
                Some((Err(error), None))
            }
        }
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(pieces)
}
