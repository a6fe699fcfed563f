//! Blobs in an S3 bucket (or an emulator: set the endpoint and path-style addressing in the config).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{check_key, BlobError, BlobStore, ListPage};

#[derive(Clone)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl S3BlobStore {
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, BlobError> {
        check_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(backend(e)),
        }
    }
}

fn backend(e: impl std::fmt::Debug) -> BlobError {
    BlobError::Backend(format!("{e:?}"))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Streamed from disk in one `PutObject` (up to 5 GB; compacted lake files are tens of MB).
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), BlobError> {
        check_key(key)?;
        let body = ByteStream::from_path(path).await.map_err(backend)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let out = self.get_object(key).await?;
        Ok(out.body.collect().await.map_err(backend)?.into_bytes())
    }

    async fn get_capped(&self, key: &str, max_bytes: usize) -> Result<Bytes, BlobError> {
        let too_large = || BlobError::TooLarge(key.to_owned(), max_bytes);
        let mut out = self.get_object(key).await?;
        let stated = out.content_length().unwrap_or(0);
        if usize::try_from(stated).map_or(true, |n| n > max_bytes) {
            return Err(too_large());
        }
        // The stated length is the server's word; the bytes are counted as they come all the same.
        let mut data = bytes::BytesMut::with_capacity(stated as usize);
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(backend)?;
            if data.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data.freeze())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        self.list_where(prefix, |_| true).await
    }

    async fn list_written_before(
        &self,
        prefix: &str,
        before_us: i64,
    ) -> Result<Vec<String>, BlobError> {
        self.list_where(prefix, |object| written_before(object, before_us))
            .await
    }

    /// One `ListObjectsV2` request from `StartAfter`: S3 lists keys in UTF-8 binary order, 1,000 at most.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        before_us: i64,
    ) -> Result<ListPage, BlobError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .send()
            .await
            .map_err(backend)?;
        let objects = page.contents();
        let keys = objects
            .iter()
            .filter(|o| written_before(o, before_us))
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let next = match page.is_truncated() {
            Some(true) => objects.last().and_then(|o| o.key()).map(str::to_owned),
            _ => None,
        };
        Ok(ListPage { keys, next })
    }
}

/// Whether the object's `LastModified` is before `before_us` (µs since the Unix epoch); undated: no.
fn written_before(object: &aws_sdk_s3::types::Object, before_us: i64) -> bool {
    object.last_modified().is_some_and(|t| {
        t.secs()
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.subsec_nanos() / 1_000))
            < before_us
    })
}

impl S3BlobStore {
    /// The keys under `prefix` of the objects `keep` accepts, sorted.
    async fn list_where(
        &self,
        prefix: &str,
        keep: impl Fn(&aws_sdk_s3::types::Object) -> bool,
    ) -> Result<Vec<String>, BlobError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(backend)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter(|o| keep(o))
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}
