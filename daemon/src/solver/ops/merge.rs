//! MergeOp and DiffOp, on layer stacks. A merge stacks its inputs' layers in order (a later
//! input's deletions hide earlier files, as BuildKit's merge does); a diff is the layers that
//! turn its lower input into its upper one. Either way the result is a chain of snapshots named
//! by chain ID, made by applying layers that already exist: nothing is re-run.

use nodekit_proto::pb::{DiffOp, MergeOp};

use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::{Layer, Ref};
use crate::worker::CommittedLayer;

pub async fn merge(
    op: &OpContext<'_>,
    merge: &MergeOp,
    inputs: Vec<Ref>,
) -> Result<Ref, SolveError> {
    let picked = merge
        .inputs
        .iter()
        .map(|m| input(&inputs, m.input))
        .collect::<Result<Vec<_>, _>>()?;
    let mut result = Ref {
        view: None,
        base: picked.first().and_then(|r| r.base.clone()),
        ..Ref::default()
    };
    for part in picked {
        result.layers.extend(part.layers.iter().cloned());
        result.owners.extend(part.owners.iter().cloned());
        result.cache_holds.extend(part.cache_holds.iter().cloned());
    }
    materialize(op, result, "merged result").await
}

pub async fn diff(op: &OpContext<'_>, diff: &DiffOp, inputs: Vec<Ref>) -> Result<Ref, SolveError> {
    let lower = input(&inputs, diff.lower.as_ref().map_or(-1, |l| l.input))?;
    let upper = input(&inputs, diff.upper.as_ref().map_or(-1, |u| u.input))?;
    let is_prefix = lower.layers.len() <= upper.layers.len()
        && lower
            .layers
            .iter()
            .zip(&upper.layers)
            .all(|(l, u)| l.diff_id() == u.diff_id());
    if is_prefix {
        let result = Ref {
            view: None,
            layers: upper.layers[lower.layers.len()..].to_vec(),
            base: None,
            owners: upper.owners.clone(),
            cache_holds: upper.cache_holds.clone(),
            key: None,
            content: None,
        };
        return materialize(op, result, "diff result").await;
    }
    let worker = &op.solver.worker;
    let (lower_chain, upper_chain) = (lower.chain_id(), upper.chain_id());
    let lease = op.lease().await?;
    let blob = worker
        .diff_snapshots(lease, lower_chain.as_deref(), upper_chain.as_deref())
        .await
        .map_err(|e| SolveError::worker("computing a diff", e))?;
    let layer = CommittedLayer {
        chain_id: crate::oci::chain_ids(&[blob.digest.as_str()])
            .pop()
            .unwrap_or_default(),
        parent: None,
        diff_id: blob.digest.clone(),
        blob,
        created_ms: crate::worker::layers::now_ms(),
    };
    materialize(op, Ref::default().with_layer(layer, lease), "diff result").await
}

/// Makes sure `result`'s chain of snapshots exists, holding it with the vertex's lease.
async fn materialize(op: &OpContext<'_>, mut result: Ref, what: &str) -> Result<Ref, SolveError> {
    let blobs: Vec<_> = result.layers.iter().map(Layer::to_blob).collect();
    let lease = op.lease().await?;
    op.solver
        .worker
        .apply_chain(lease, &blobs, what)
        .await
        .map_err(|e| SolveError::worker(format!("making the {what}"), e))?;
    if !result
        .owners
        .iter()
        .any(|o| std::sync::Arc::ptr_eq(o, lease))
    {
        result.owners.push(lease.clone());
    }
    Ok(result)
}

/// Op input `index`; -1 is scratch.
fn input(inputs: &[Ref], index: i64) -> Result<Ref, SolveError> {
    if index < 0 {
        return Ok(Ref::default());
    }
    inputs
        .get(index as usize)
        .cloned()
        .ok_or_else(|| SolveError::InvalidDefinition(format!("input {index} does not exist")))
}
