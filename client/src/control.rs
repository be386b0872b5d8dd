//! Commands on BuildKit's Control service.

use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{DiskUsageRequest, ListWorkersRequest, PruneRequest};
use nodekit_proto::MAX_MESSAGE;
use tonic::transport::Channel;

use crate::connect::{self, Target};

async fn client(target: &Target) -> anyhow::Result<ControlClient<Channel>> {
    let channel = connect::open(target).await?;
    Ok(ControlClient::new(channel).max_decoding_message_size(MAX_MESSAGE))
}

pub async fn workers(target: &Target) -> anyhow::Result<()> {
    let answer = client(target)
        .await?
        .list_workers(ListWorkersRequest::default())
        .await?;
    for record in answer.into_inner().record {
        println!("ID:\t{}", record.id);
        let platforms: Vec<String> = record
            .platforms
            .iter()
            .map(|p| match p.variant.as_str() {
                "" => format!("{}/{}", p.os, p.architecture),
                v => format!("{}/{}/{v}", p.os, p.architecture),
            })
            .collect();
        println!("Platforms:\t{}", platforms.join(","));
        if let Some(version) = record.buildkit_version {
            println!("BuildKit:\t{} {}", version.package, version.version);
        }
        let mut labels: Vec<_> = record.labels.into_iter().collect();
        labels.sort();
        println!("Labels:");
        for (key, value) in labels {
            println!("\t{key}:\t{value}");
        }
    }
    Ok(())
}

pub async fn disk_usage(target: &Target) -> anyhow::Result<()> {
    let answer = client(target)
        .await?
        .disk_usage(DiskUsageRequest::default())
        .await?;
    let records = answer.into_inner().record;
    println!("{:<28}\t{:<8}\t{:>12}", "ID", "RECLAIMABLE", "SIZE");
    let mut total = 0i64;
    for record in &records {
        total += record.size;
        println!(
            "{:<28}\t{:<8}\t{:>12}",
            record.id, !record.in_use, record.size
        );
    }
    println!("Total:\t{total}");
    Ok(())
}

pub async fn prune(target: &Target, all: bool) -> anyhow::Result<()> {
    let request = PruneRequest {
        all,
        ..Default::default()
    };
    let mut stream = client(target).await?.prune(request).await?.into_inner();
    let mut total = 0i64;
    while let Some(record) = stream.message().await? {
        total += record.size;
        println!("{}\t{}", record.id, record.size);
    }
    println!("Total:\t{total}");
    Ok(())
}
