//! Image records in containerd's image store (what `ctr images ls` and the kubelet see).

use std::collections::HashMap;

use crate::ContainerdChannel;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image, UpdateImageRequest,
};

use crate::context::CallContext;
use crate::error::{StatusExt, WorkerResult};
use crate::Descriptor;

/// What an image name points at.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    pub name: String,
    pub target: Descriptor,
}

pub async fn get_image(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    name: &str,
) -> WorkerResult<Option<ImageRecord>> {
    let answer = ImagesClient::new(channel.clone())
        .get(ctx.request(GetImageRequest {
            name: name.to_string(),
        }))
        .await;
    let image = answer.op_optional("image get")?.and_then(|r| r.image);
    Ok(image.and_then(|image| {
        image.target.map(|target| ImageRecord {
            name: image.name,
            target: target.into(),
        })
    }))
}

/// Creates the image record, or points an existing one at the new target.
pub async fn put_image_record(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    record: &ImageRecord,
) -> WorkerResult<()> {
    let image = Image {
        name: record.name.clone(),
        labels: HashMap::new(),
        target: Some(record.target.clone().into()),
        ..Default::default()
    };
    // A rebuild names an image that exists: update first, create when it is not there.
    let mut images = ImagesClient::new(channel.clone());
    let updated = images
        .update(ctx.request(UpdateImageRequest {
            image: Some(image.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".into()],
            }),
            source_date_epoch: None,
        }))
        .await;
    if !matches!(&updated, Err(status) if status.code() == tonic::Code::NotFound) {
        return updated.op("image update").map(|_| ());
    }
    let created = images
        .create(ctx.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await;
    match created {
        // Another build created it meanwhile.
        Err(status) if status.code() == tonic::Code::AlreadyExists => images
            .update(ctx.request(UpdateImageRequest {
                image: Some(image),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["target".into()],
                }),
                source_date_epoch: None,
            }))
            .await
            .op("image update")
            .map(|_| ()),
        other => other.op("image create").map(|_| ()),
    }
}
