//! Wire-format checks against hand-computed protobuf encodings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_proto::fsutil::types::{packet::PacketType, Packet};
use nodekit_proto::moby::buildkit::v1 as control;
use nodekit_proto::pb;
use prost::Message;

#[test]
fn fsutil_packet_req_bytes() {
    let p = Packet {
        r#type: PacketType::PacketReq as i32,
        stat: None,
        id: 3,
        data: Default::default(),
    };
    // field 1 varint 1, field 3 varint 3
    assert_eq!(p.encode_to_vec(), [0x08, 0x01, 0x18, 0x03]);
    let back = Packet::decode(&[0x08u8, 0x01, 0x18, 0x03][..]).unwrap();
    assert_eq!(back.r#type(), PacketType::PacketReq);
    assert_eq!(back.id, 3);
}

#[test]
fn exec_op_roundtrip() {
    let op = pb::Op {
        inputs: vec![pb::Input {
            digest: "sha256:0123456789abcdef".into(),
            index: 0,
        }],
        op: Some(pb::op::Op::Exec(pb::ExecOp {
            meta: Some(pb::Meta {
                args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
                env: vec!["PATH=/usr/bin:/bin".into()],
                cwd: "/".into(),
                valid_exit_codes: vec![0, 1],
                proxy_env: Some(pb::ProxyEnv {
                    http_proxy: "http://proxy:3128".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mounts: vec![
                pb::Mount {
                    input: 0,
                    dest: "/".into(),
                    output: 0,
                    ..Default::default()
                },
                pb::Mount {
                    input: -1,
                    dest: "/run/cache".into(),
                    output: -1,
                    mount_type: pb::MountType::Cache as i32,
                    cache_opt: Some(pb::CacheOpt {
                        id: "go-build".into(),
                        sharing: pb::CacheSharingOpt::Locked as i32,
                    }),
                    ..Default::default()
                },
            ],
            network: pb::NetMode::None as i32,
            security: pb::SecurityMode::Sandbox as i32,
            ..Default::default()
        })),
        platform: Some(pb::Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        }),
        constraints: None,
    };
    let bytes = op.encode_to_vec();
    let back = pb::Op::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, op);
    match back.op {
        Some(pb::op::Op::Exec(e)) => {
            assert_eq!(e.mounts[1].mount_type(), pb::MountType::Cache);
            assert_eq!(e.network(), pb::NetMode::None);
            assert_eq!(e.meta.unwrap().valid_exit_codes, [0, 1]);
        }
        other => panic!("unexpected op: {other:?}"),
    }
}

#[test]
fn exec_op_bytes() {
    let op = pb::Op {
        op: Some(pb::op::Op::Exec(pb::ExecOp {
            meta: Some(pb::Meta {
                args: vec!["sh".into()],
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    // Op.exec (2, len 6) { ExecOp.meta (1, len 4) { Meta.args (1, len 2) "sh" } }
    assert_eq!(
        op.encode_to_vec(),
        [0x12, 0x06, 0x0a, 0x04, 0x0a, 0x02, b's', b'h']
    );
}

#[test]
fn control_solve_request_field_numbers() {
    let req = control::SolveRequest {
        r#ref: "r".into(),
        proxy_network: true,
        ..Default::default()
    };
    // Ref = 1 (len-delimited), ProxyNetwork = 17 (varint: tag 17<<3 = 0x88 0x01)
    assert_eq!(req.encode_to_vec(), [0x0a, 0x01, b'r', 0x88, 0x01, 0x01]);

    let req = control::SolveRequest {
        exporters: vec![control::Exporter {
            r#type: "image".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // Exporters = 13 (tag 0x6a) { Type = 1 "image" }
    assert_eq!(
        req.encode_to_vec(),
        [0x6a, 0x07, 0x0a, 0x05, b'i', b'm', b'a', b'g', b'e']
    );
}

#[test]
fn definition_with_metadata_roundtrip() {
    let def = pb::Definition {
        def: vec![vec![0x12, 0x00]],
        metadata: [(
            "sha256:abc".to_string(),
            pb::OpMetadata {
                description: [("llb.customname".to_string(), "step".to_string())].into(),
                ..Default::default()
            },
        )]
        .into(),
        source: None,
    };
    let back = pb::Definition::decode(def.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back, def);
}

#[test]
fn containerd_content_field_numbers() {
    use nodekit_proto::containerd::services::content::v1 as content;
    // action 1 (varint), ref 2, total 3, expected 4, offset 5, data 6.
    let write = content::WriteContentRequest {
        action: content::WriteAction::Commit as i32,
        r#ref: "r".into(),
        total: 5,
        expected: "e".into(),
        offset: 3,
        data: bytes::Bytes::from_static(b"x"),
        labels: Default::default(),
    };
    assert_eq!(
        write.encode_to_vec(),
        [
            0x08, 0x02, 0x12, 0x01, b'r', 0x18, 0x05, 0x22, 0x01, b'e', 0x28, 0x03, 0x32, 0x01,
            b'x'
        ]
    );
    // action 1, offset 4, total 5, digest 6 (the timestamps 2 and 3 left out).
    let answer = content::WriteContentResponse {
        action: content::WriteAction::Write as i32,
        offset: 4,
        total: 5,
        digest: "d".into(),
        ..Default::default()
    };
    assert_eq!(
        answer.encode_to_vec(),
        [0x08, 0x01, 0x20, 0x04, 0x28, 0x05, 0x32, 0x01, b'd']
    );
    // digest 1, offset 2, size 3.
    let read = content::ReadContentRequest {
        digest: "d".into(),
        offset: 1,
        size: 2,
    };
    assert_eq!(
        read.encode_to_vec(),
        [0x0a, 0x01, b'd', 0x10, 0x01, 0x18, 0x02]
    );
    // digest 1, size 2, labels 5 (a map entry: key 1, value 2).
    let info = content::Info {
        digest: "d".into(),
        size: 2,
        labels: [("a".to_string(), "b".to_string())].into(),
        ..Default::default()
    };
    assert_eq!(
        info.encode_to_vec(),
        [0x0a, 0x01, b'd', 0x10, 0x02, 0x2a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b']
    );
    // ref 3, offset 4, total 5, expected 6.
    let status = content::Status {
        r#ref: "r".into(),
        offset: 4,
        total: 5,
        expected: "e".into(),
        ..Default::default()
    };
    assert_eq!(
        status.encode_to_vec(),
        [0x1a, 0x01, b'r', 0x20, 0x04, 0x28, 0x05, 0x32, 0x01, b'e']
    );
}
