//! InferenceService operator written with kube-rs, as its documentation teaches:
//! a `Controller` on InferenceServices that owns Deployments and Services,
//! server-side apply, a status patch, requeue after 30 s (60 s on error).
//! Benchmark peer of inference-operator (see README.md).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Affinity, Container, ContainerPort, HTTPGetAction, NodeAffinity, NodeSelector,
            NodeSelectorRequirement, NodeSelectorTerm, PodSpec, PodTemplateSpec, Probe,
            ResourceRequirements, Service, ServicePort, ServiceSpec, Toleration,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{Condition, LabelSelector, Time},
        util::intstr::IntOrString,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, CustomResource, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams},
    runtime::{Controller, controller::Action, watcher},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

const MANAGER: &str = "inference-operator-rust";
const IMAGE: &str = "vllm/vllm-openai:v0.6.3";
const PORT: i32 = 8000;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "ai.example.com",
    version = "v1",
    kind = "InferenceService",
    namespaced,
    status = "InferenceServiceStatus",
    shortname = "isvc"
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceServiceSpec {
    pub model: String,
    pub replicas: Option<i32>,
    pub gpu_type: String,
    pub max_batch_size: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceServiceStatus {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub endpoint: Option<String>,
    pub phase: Option<String>,
    pub selector: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

struct Ctx {
    client: Client,
}

fn gpu_products(gpu: &str) -> Vec<String> {
    let p: &[&str] = match gpu {
        "A100" => &[
            "NVIDIA-A100-SXM4-40GB",
            "NVIDIA-A100-SXM4-80GB",
            "NVIDIA-A100-PCIE-40GB",
            "NVIDIA-A100-80GB-PCIe",
        ],
        "H100" => &[
            "NVIDIA-H100-80GB-HBM3",
            "NVIDIA-H100-SXM5-80GB",
            "NVIDIA-H100-PCIe",
            "NVIDIA-H100-NVL",
        ],
        "L40S" => &["NVIDIA-L40S"],
        _ => &[],
    };
    p.iter().map(|s| s.to_string()).collect()
}

fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/instance".into(), name.into()),
        ("app.kubernetes.io/name".into(), "inference-server".into()),
    ])
}

fn labels(name: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(name);
    l.insert("app.kubernetes.io/component".into(), "model-server".into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    l.insert(
        "app.kubernetes.io/part-of".into(),
        "inference-operator".into(),
    );
    l
}

fn metadata(isvc: &InferenceService) -> ObjectMeta {
    ObjectMeta {
        name: Some(isvc.name_any()),
        namespace: isvc.namespace(),
        labels: Some(labels(&isvc.name_any())),
        owner_references: Some(vec![isvc.controller_owner_ref(&()).unwrap()]),
        ..Default::default()
    }
}

fn desired_deployment(isvc: &InferenceService) -> Deployment {
    let name = isvc.name_any();
    let spec = &isvc.spec;
    let container = Container {
        name: "model-server".into(),
        image: Some(IMAGE.into()),
        args: Some(vec![
            "--model".into(),
            spec.model.clone(),
            "--max-num-seqs".into(),
            spec.max_batch_size.unwrap_or(32).to_string(),
            "--port".into(),
            PORT.to_string(),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        resources: Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                "nvidia.com/gpu".into(),
                Quantity("1".into()),
            )])),
            ..Default::default()
        }),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health".into()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            ..Default::default()
        }),
        ..Default::default()
    };
    let affinity = Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "nvidia.com/gpu.product".into(),
                        operator: "In".into(),
                        values: Some(gpu_products(&spec.gpu_type)),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: metadata(isvc),
        spec: DeploymentSpec {
            replicas: Some(spec.replicas.unwrap_or(1)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&name)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    affinity: Some(affinity),
                    tolerations: Some(vec![Toleration {
                        key: Some("nvidia.com/gpu".into()),
                        operator: Some("Exists".into()),
                        effect: Some("NoSchedule".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

fn desired_service(isvc: &InferenceService) -> Service {
    Service {
        metadata: metadata(isvc),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(&isvc.name_any())),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// (phase, [(type, status, reason, message)]) — the same decision as inference-operator.
fn decide(
    dep: &Deployment,
    want: i32,
) -> (
    &'static str,
    [(&'static str, &'static str, String, String); 3],
) {
    let st = dep.status.clone().unwrap_or_default();
    let conds = st.conditions.unwrap_or_default();
    let cond = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_.as_deref() == Some(t))
            .cloned()
    };
    let degraded_ok = (
        "Degraded",
        "False",
        "AsExpected".to_string(),
        "no failure observed".to_string(),
    );
    let failed = match (cond("Progressing"), cond("ReplicaFailure")) {
        (Some(p), _)
            if p.status.as_deref() == Some("False")
                && p.reason.as_deref() == Some("ProgressDeadlineExceeded") =>
        {
            Some(p)
        }
        (_, Some(f)) if f.status.as_deref() == Some("True") => Some(f),
        _ => None,
    };
    if let Some(c) = failed {
        let reason = c
            .reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "DeploymentFailed".into());
        let msg = c
            .message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "the Deployment failed".into());
        return (
            "Failed",
            [
                ("Ready", "False", reason.clone(), msg.clone()),
                ("Progressing", "False", reason.clone(), msg.clone()),
                ("Degraded", "True", reason, msg),
            ],
        );
    }
    let generation = dep.metadata.generation.unwrap_or(0);
    let observed = st.observed_generation.unwrap_or(0) >= generation;
    let (ready, updated, replicas) = (
        st.ready_replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0),
    );
    let spec_replicas = dep.spec.replicas.unwrap_or(1);
    let rolled = observed
        && spec_replicas == want
        && updated >= want
        && ready >= want
        && replicas <= updated;
    if rolled && want == 0 {
        return (
            "Ready",
            [
                (
                    "Ready",
                    "True",
                    "ScaledToZero".into(),
                    "0 replicas requested".into(),
                ),
                (
                    "Progressing",
                    "False",
                    "RolloutComplete".into(),
                    "scaled to zero".into(),
                ),
                degraded_ok,
            ],
        );
    }
    if rolled {
        return (
            "Ready",
            [
                (
                    "Ready",
                    "True",
                    "AllReplicasReady".into(),
                    format!("{ready}/{want} replicas ready"),
                ),
                (
                    "Progressing",
                    "False",
                    "RolloutComplete".into(),
                    "every replica runs the current spec".into(),
                ),
                degraded_ok,
            ],
        );
    }
    let phase = if ready > 0 || replicas > 0 {
        "Progressing"
    } else {
        "Pending"
    };
    let r = if observed {
        (
            "Ready",
            "False",
            "ReplicasNotReady".to_string(),
            format!("{ready}/{want} replicas ready, {updated} updated"),
        )
    } else {
        (
            "Ready",
            "False",
            "RolloutPending".to_string(),
            "the Deployment has not observed the latest spec yet".to_string(),
        )
    };
    let p = cond("Progressing");
    let reason = p
        .as_ref()
        .and_then(|c| c.reason.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "RollingOut".into());
    let msg = p
        .and_then(|c| c.message)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "waiting for replicas to become ready".into());
    (
        phase,
        [r, ("Progressing", "True", reason, msg), degraded_ok],
    )
}

async fn reconcile(isvc: Arc<InferenceService>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = isvc
        .namespace()
        .ok_or_else(|| Error::Other("InferenceService without namespace".into()))?;
    let name = isvc.name_any();
    let pp = PatchParams::apply(MANAGER).force();

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let dep = deployments
        .patch(&name, &pp, &Patch::Apply(&desired_deployment(&isvc)))
        .await?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    services
        .patch(&name, &pp, &Patch::Apply(&desired_service(&isvc)))
        .await?;

    let want = isvc.spec.replicas.unwrap_or(1);
    let (phase, verdict) = decide(&dep, want);
    let old = isvc.status.clone().unwrap_or_default();
    let generation = isvc.metadata.generation;
    let now = Time(Timestamp::now());
    let conditions = verdict
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let since = old
                .conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: type_.into(),
                status: status.into(),
                observed_generation: generation,
                last_transition_time: since,
                reason,
                message,
            }
        })
        .collect();
    let dst = dep.status.unwrap_or_default();
    let status = InferenceServiceStatus {
        observed_generation: generation,
        replicas: Some(dst.replicas.unwrap_or(0)),
        ready_replicas: Some(dst.ready_replicas.unwrap_or(0)),
        endpoint: Some(format!("http://{name}.{ns}.svc:{PORT}")),
        phase: Some(phase.into()),
        selector: Some(format!(
            "app.kubernetes.io/instance={name},app.kubernetes.io/name=inference-server"
        )),
        conditions,
    };
    if status != old {
        let isvcs: Api<InferenceService> = Api::namespaced(ctx.client.clone(), &ns);
        isvcs
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

fn error_policy(isvc: Arc<InferenceService>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(name = %isvc.name_any(), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(60))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let client = Client::try_default().await?; // KUBECONFIG, ~/.kube/config or in-cluster
    let isvcs = Api::<InferenceService>::all(client.clone());
    let controller = Controller::new(isvcs, watcher::Config::default())
        .owns(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        .owns(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        )
        .shutdown_on_signal();
    let store = controller.store();
    // Readiness for the benchmark: the InferenceService store has done its
    // first list. Re-polled because the store's ready signal wakes only the
    // last of several concurrent waiters (the controller waits on it too).
    tokio::spawn(async move {
        while tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready())
            .await
            .is_err()
        {}
        tracing::info!("caches synced");
    });
    tracing::info!("starting controller");
    controller
        .run(reconcile, error_policy, Arc::new(Ctx { client }))
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
    tracing::info!("controller stopped");
    Ok(())
}
