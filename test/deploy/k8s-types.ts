/**
 * The object types the deploy manifests may contain, for the unknown-field check: the Kubernetes
 * types are kubernetes-models' own declarations (generated from the Kubernetes OpenAPI), turned
 * into a JSON schema with additionalProperties: false by ts-json-schema-generator (test/deploy/k8s.ts).
 *
 * PyTorchJob has no published model: its envelope is written here from the Kubeflow training
 * operator's Go types (github.com/kubeflow/training-operator, pkg/apis/kubeflow.org/v1:
 * pytorch_types.go PyTorchJobSpec, common_types.go ReplicaSpec/RunPolicy/SchedulingPolicy), and
 * its pod template is the real IPodTemplateSpec, so everything below the template is checked as
 * strictly as a Job's.
 */
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import type { IClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import type { IPodTemplateSpec } from "kubernetes-models/v1/PodTemplateSpec";
import type { IIoK8sApimachineryPkgApisMetaV1ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

/** kubeflow.org/v1 common_types.go SchedulingPolicy. */
export interface KubeflowSchedulingPolicy {
  minAvailable?: number;
  queue?: string;
  minResources?: Record<string, number | string>;
  priorityClass?: string;
  scheduleTimeoutSeconds?: number;
}

/** kubeflow.org/v1 common_types.go RunPolicy. */
export interface KubeflowRunPolicy {
  cleanPodPolicy?: "All" | "Running" | "None";
  ttlSecondsAfterFinished?: number;
  activeDeadlineSeconds?: number;
  backoffLimit?: number;
  schedulingPolicy?: KubeflowSchedulingPolicy;
  suspend?: boolean;
  managedBy?: string;
}

/** kubeflow.org/v1 common_types.go ReplicaSpec. */
export interface KubeflowReplicaSpec {
  replicas?: number;
  template?: IPodTemplateSpec;
  restartPolicy?: "Always" | "OnFailure" | "Never" | "ExitCode";
}

/** kubeflow.org/v1 pytorch_types.go ElasticPolicy (the fields an example may use). */
export interface KubeflowElasticPolicy {
  minReplicas?: number;
  maxReplicas?: number;
  rdzvBackend?: "c10d" | "etcd" | "etcd-v2";
  rdzvPort?: number;
  rdzvHost?: string;
  rdzvId?: string;
  maxRestarts?: number;
  standalone?: boolean;
  nProcPerNode?: number;
}

/** kubeflow.org/v1 PyTorchJob (pytorch_types.go). */
export interface PyTorchJob {
  apiVersion: "kubeflow.org/v1";
  kind: "PyTorchJob";
  metadata?: IIoK8sApimachineryPkgApisMetaV1ObjectMeta;
  spec: {
    runPolicy: KubeflowRunPolicy;
    elasticPolicy?: KubeflowElasticPolicy;
    nprocPerNode?: string;
    pytorchReplicaSpecs: { Master?: KubeflowReplicaSpec; Worker?: KubeflowReplicaSpec };
  };
}

/** Every kind the manifests hold, by "apiVersion/kind"; anything else fails the check. */
export interface ManifestKinds {
  "batch/v1/Job": IJob;
  "apps/v1/DaemonSet": IDaemonSet;
  "apps/v1/Deployment": IDeployment;
  "v1/Service": IService;
  "v1/ServiceAccount": IServiceAccount;
  "v1/Namespace": INamespace;
  "rbac.authorization.k8s.io/v1/ClusterRole": IClusterRole;
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": IClusterRoleBinding;
  "monitoring.coreos.com/v1/ServiceMonitor": IServiceMonitor;
  "kubeflow.org/v1/PyTorchJob": PyTorchJob;
}

/** Any of them. */
export type Manifest =
  | IJob
  | IDaemonSet
  | IDeployment
  | IService
  | IServiceAccount
  | INamespace
  | IClusterRole
  | IClusterRoleBinding
  | IServiceMonitor
  | PyTorchJob;
