use nodekit_test_support::TestEnv;
use nodekitd::oci::Platform;
use nodekitd::worker::exec::{ExtraMount, NetworkMode, ProcessSpec};
use nodekitd::worker::{
    ActiveSnapshot, ExecOutcome, ExecRequest, Lease, OutputChunk, OutputStream, ResolvedImage,
    Worker,
};
use tokio_util::sync::CancellationToken;

/// A worker, a lease and the local busybox image unpacked with a writable snapshot on top.
pub struct Step {
    pub worker: Worker,
    pub lease: Lease,
    pub base: ResolvedImage,
    pub rootfs: ActiveSnapshot,
}

impl Step {
    pub async fn on_busybox(test: &str) -> Step {
        let env = TestEnv::get();
        let worker = env.worker(test).await;
        let lease = worker.lease(test).await.expect("lease");
        let base = worker
            .resolve_image(&env.local_image, &Platform::native())
            .await
            .expect("resolve local image");
        let top = worker.unpack(&lease, &base).await.expect("unpack");
        let rootfs = worker
            .prepare(&lease, top.as_deref())
            .await
            .expect("prepare");
        Step {
            worker,
            lease,
            base,
            rootfs,
        }
    }

    pub fn request(&self, script: &str) -> ExecRequest {
        ExecRequest {
            rootfs: self.rootfs.clone(),
            process: ProcessSpec {
                args: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec!["STEP=1".into()],
                cwd: "/".into(),
                user: String::new(),
                extra_hosts: Vec::new(),
            },
            mounts: Vec::<ExtraMount>::new(),
            network: NetworkMode::Host,
            sandbox: Default::default(),
            emulator: None,
        }
    }

    /// Runs `request`, collecting its output.
    pub async fn run(&self, request: ExecRequest) -> (ExecOutcome, Output) {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
        let collector = tokio::spawn(async move {
            let mut output = Output::default();
            while let Some(chunk) = receiver.recv().await {
                output.push(chunk);
            }
            output
        });
        let outcome = self
            .worker
            .exec(request, Some(sender), CancellationToken::new())
            .await
            .expect("exec");
        (outcome, collector.await.expect("collector"))
    }

    pub async fn finish(self) {
        self.worker.discard(self.rootfs).await.ok();
        self.lease.release().await.expect("release lease");
    }
}

#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn push(&mut self, chunk: OutputChunk) {
        let text = String::from_utf8_lossy(&chunk.data);
        match chunk.stream {
            OutputStream::Stdout => self.stdout.push_str(&text),
            OutputStream::Stderr => self.stderr.push_str(&text),
        }
    }
}
