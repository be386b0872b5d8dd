//! Request metadata containerd expects: the namespace on every call and, for objects that must
//! survive until nodekit is done with them, the lease that protects them from containerd's GC.

use tonic::metadata::MetadataValue;
use tonic::Request;

/// The namespace (and optional lease) a batch of containerd calls runs under.
#[derive(Clone, Debug)]
pub struct CallContext {
    namespace: String,
    lease: Option<String>,
}

impl CallContext {
    pub fn new(namespace: impl Into<String>) -> Self {
        CallContext {
            namespace: namespace.into(),
            lease: None,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The lease objects created through this context are attached to, if any.
    pub fn lease(&self) -> Option<&str> {
        self.lease.as_deref()
    }

    /// The same namespace, with every object created through it attached to `lease`.
    pub fn with_lease(&self, lease: &str) -> Self {
        CallContext {
            namespace: self.namespace.clone(),
            lease: Some(lease.to_string()),
        }
    }

    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        // Namespaces and lease ids are validated ASCII identifiers; a bad one is a caller bug
        // that containerd would reject anyway, so an unparsable value is simply left out.
        if let Ok(value) = MetadataValue::try_from(self.namespace.as_str()) {
            metadata.insert("containerd-namespace", value);
        }
        if let Some(Ok(value)) = self.lease.as_deref().map(MetadataValue::try_from) {
            metadata.insert("containerd-lease", value);
        }
        request
    }
}
