//! deploy/kubernetes/: the manifests parse, and the fields a sharded run depends on agree with
//! each other (no cluster here: what can be checked without one is checked).

use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

const DIR: &str = "deploy/kubernetes";

fn load(file: &str) -> Vec<Value> {
    let path = Path::new(DIR).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .collect()
}

fn one(file: &str) -> Value {
    let mut docs = load(file);
    assert_eq!(docs.len(), 1, "{file} holds one object");
    docs.remove(0)
}

/// The value at a path of keys (strings) and sequence indices (numbers as text).
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |v, key| {
        let next = match key.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(key),
        };
        next.unwrap_or_else(|| panic!("no {key} in {path}"))
    })
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not text"))
}

fn number(value: &Value, path: &str) -> u64 {
    at(value, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a number"))
}

/// The container's argument following `flag`.
fn arg_after<'a>(args: &'a [Value], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a.as_str() == Some(flag))
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[i + 1].as_str().unwrap()
}

#[test]
fn the_job_is_indexed_and_its_index_is_the_shard() {
    let job = one("job.yaml");
    assert_eq!(text(&job, "apiVersion"), "batch/v1");
    assert_eq!(text(&job, "kind"), "Job");
    assert_eq!(text(&job, "spec.completionMode"), "Indexed");
    let completions = number(&job, "spec.completions");
    assert_eq!(
        number(&job, "spec.parallelism"),
        completions,
        "all shards at once"
    );
    assert_eq!(
        number(&job, "spec.backoffLimit"),
        0,
        "a shard is never rerun"
    );
    assert_eq!(text(&job, "spec.template.spec.restartPolicy"), "Never");

    let containers = at(&job, "spec.template.spec.containers")
        .as_sequence()
        .unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args = at(container, "args").as_sequence().unwrap();
    assert_eq!(args[0].as_str(), Some("run"));
    assert_eq!(
        arg_after(args, "--shard"),
        format!("$(JOB_COMPLETION_INDEX)/{completions}"),
        "the completion index is the shard, N the completions"
    );
    assert_eq!(arg_after(args, "--start-at"), "$(VOLLEY_START_AT)");
    assert_eq!(arg_after(args, "--run-id"), "$(VOLLEY_RUN_ID)");
    let out = arg_after(args, "--out");
    assert!(
        out.starts_with("/results/") && out.contains("$(JOB_COMPLETION_INDEX)"),
        "each shard its own folder on the results volume: {out}"
    );

    // Every $(VAR) in the args is declared in env, so Kubernetes expands it.
    let env = at(container, "env").as_sequence().unwrap();
    let declared: Vec<&str> = env.iter().map(|e| text(e, "name")).collect();
    for var in ["JOB_COMPLETION_INDEX", "VOLLEY_START_AT", "VOLLEY_RUN_ID"] {
        assert!(declared.contains(&var), "{var} in env: {declared:?}");
    }
    let index = env
        .iter()
        .find(|e| text(e, "name") == "JOB_COMPLETION_INDEX")
        .unwrap();
    assert_eq!(
        text(index, "valueFrom.fieldRef.fieldPath"),
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );

    // Prometheus scrapes every shard where it serves its metrics, on all interfaces.
    let listen = arg_after(args, "--metrics-listen");
    let port = listen
        .strip_prefix("0.0.0.0:")
        .unwrap_or_else(|| panic!("--metrics-listen on all interfaces of the pod: {listen}"));
    let annotations = at(&job, "spec.template.metadata.annotations");
    // Annotation keys hold dots: looked up whole, not as a path.
    let annotation = |key: &str| annotations.get(key).and_then(Value::as_str);
    assert_eq!(annotation("prometheus.io/scrape"), Some("true"));
    assert_eq!(annotation("prometheus.io/port"), Some(port));
    assert_eq!(annotation("prometheus.io/path"), Some("/metrics"));
    let ports = at(container, "ports").as_sequence().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| number(p, "containerPort").to_string() == port),
        "the metrics port is declared: {ports:?}"
    );

    for key in [
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ] {
        at(container, &format!("resources.{key}"));
    }
}

#[test]
fn the_scenario_configmap_is_mounted_where_the_job_reads_it() {
    let job = one("job.yaml");
    let config = one("scenario.yaml");
    assert_eq!(text(&config, "kind"), "ConfigMap");
    let pod = at(&job, "spec.template.spec");
    let container = at(pod, "containers.0");
    let scenario_arg = at(container, "args.1").as_str().unwrap();

    // The volume that holds the scenario: from the ConfigMap, mounted at the arg's folder.
    let volumes = at(pod, "volumes").as_sequence().unwrap();
    let volume = volumes
        .iter()
        .find(|v| v.get("configMap").is_some())
        .expect("a configMap volume");
    assert_eq!(
        text(volume, "configMap.name"),
        text(&config, "metadata.name")
    );
    let mounts = at(container, "volumeMounts").as_sequence().unwrap();
    let mount = mounts
        .iter()
        .find(|m| text(m, "name") == text(volume, "name"))
        .expect("the scenario volume is mounted");
    let item = at(volume, "configMap.items.0");
    let key = text(item, "key");
    let mounted_at = format!("{}/{}", text(mount, "mountPath"), text(item, "path"));
    assert_eq!(mounted_at, scenario_arg, "the run reads the mounted file");

    // The key holds a scenario volley accepts, whose clients split evenly over the shards.
    let toml = at(&config, "data")
        .get(key)
        .and_then(Value::as_str)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    let plan = volley::scenario::load(&file, &Default::default())
        .unwrap_or_else(|e| panic!("the ConfigMap's scenario: {e}"));
    let shards = number(&job, "spec.completions");
    assert_eq!(plan.total_clients() % shards, 0, "clients split evenly");

    // The results volume is the claim the collector mounts too.
    let results = volumes
        .iter()
        .find(|v| v.get("persistentVolumeClaim").is_some())
        .expect("a results volume");
    let claim = text(results, "persistentVolumeClaim.claimName");
    let pvc = one("results-pvc.yaml");
    assert_eq!(text(&pvc, "kind"), "PersistentVolumeClaim");
    assert_eq!(text(&pvc, "metadata.name"), claim);
    let collector = one("collector.yaml");
    assert_eq!(
        text(&collector, "spec.volumes.0.persistentVolumeClaim.claimName"),
        claim
    );
}

#[test]
fn the_example_server_serves_the_scenarios_target() {
    let docs = load("server.yaml");
    let kinds: Vec<&str> = docs.iter().map(|d| text(d, "kind")).collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    let service = &docs[1];
    let config = one("scenario.yaml");
    let toml = at(&config, "data")
        .get("scenario.toml")
        .and_then(Value::as_str)
        .unwrap();
    let target = format!(
        "ws://{}:{}/",
        text(service, "metadata.name"),
        number(service, "spec.ports.0.port")
    );
    assert!(toml.contains(&target), "the scenario targets {target}");
    let args = at(&docs[0], "spec.template.spec.containers.0.args")
        .as_sequence()
        .unwrap();
    assert_eq!(args[0].as_str(), Some("serve"));
    assert_eq!(arg_after(args, "--listen"), "0.0.0.0:9000");
}

/// `$(NAME)` in a container argument expanded as Kubernetes does from the container's environment.
fn expand(arg: &str, env: &[(&str, String)]) -> String {
    env.iter().fold(arg.to_string(), |text, (name, value)| {
        text.replace(&format!("$({name})"), value)
    })
}

/// The shard path as the cluster runs it, here: every completion index of job.yaml runs the Job's
/// own container arguments with the environment the Job gives it (JOB_COMPLETION_INDEX, and
/// VOLLEY_START_AT / VOLLEY_RUN_ID as the ConfigMap volley-run holds them), the scenario and
/// results paths mapped to a temporary folder, against a `volley serve` on 127.0.0.1; the shard
/// folders are then merged as the collector does. Shards that hear each other's talkers lose
/// nothing only if they share the run id and the time zero the Job hands them.
#[test]
fn the_jobs_shards_run_here_with_the_jobs_environment_and_merge() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let job = one("job.yaml");
    let shards = number(&job, "spec.completions");
    let args: Vec<String> = at(&job, "spec.template.spec.containers.0.args")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let scenario_mount = text(
        &job,
        "spec.template.spec.containers.0.volumeMounts.0.mountPath",
    );
    let results_mount = text(
        &job,
        "spec.template.spec.containers.0.volumeMounts.1.mountPath",
    );

    let bin = assert_cmd::cargo::cargo_bin("volley");
    let mut server = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let scenario_dir = dir.path().join("scenario");
    let results_dir = dir.path().join("results");
    std::fs::create_dir_all(&scenario_dir).unwrap();
    // Two talkers per shard in one room with listeners: each shard hears the others' talkers.
    std::fs::write(
        scenario_dir.join("scenario.toml"),
        format!(
            r#"
name = "k8s-shards"
target = "{url}/broadcast?room=k8s"
duration = "1s"
ramp = "200ms"
drain = "1s"
connect_timeout = "5s"

[[group]]
name = "listeners"
clients = {listeners}

[[group]]
name = "talkers"
clients = {shards}
on_connect = [{{ wait = "300ms" }}]
emit = [{{ event = "chat", data = {{ n = "{{{{seq}}}}" }}, rate = "10/s" }}]

[[expect]]
name = "fanout"
event = "chat"
from = "talkers"
to = ["listeners", "talkers"]
"#,
            listeners = 4 * shards
        ),
    )
    .unwrap();

    // What `kubectl create configmap volley-run --from-literal=...` would hold.
    let start_at = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3),
    )
    .to_string();
    let run_id = "c0ffee01".to_string();
    let children: Vec<_> = (0..shards)
        .map(|index| {
            let env = [
                ("JOB_COMPLETION_INDEX", index.to_string()),
                ("VOLLEY_START_AT", start_at.clone()),
                ("VOLLEY_RUN_ID", run_id.clone()),
            ];
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    expand(a, &env)
                        .replacen(scenario_mount, scenario_dir.to_str().unwrap(), 1)
                        .replacen(results_mount, results_dir.to_str().unwrap(), 1)
                        // Each pod has a network of its own; here the shards share one.
                        .replacen("0.0.0.0:9464", "127.0.0.1:0", 1)
                })
                .collect();
            Command::new(&bin)
                .args(&args)
                .args(["--quiet", "--metrics-linger", "0s"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output_async()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    // SAFETY: a signal to the server this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    for (index, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "shard {index}: {out:?}");
    }

    let folders: Vec<_> = (0..shards)
        .map(|k| results_dir.join(&run_id).join(format!("shard-{k}")))
        .collect();
    let merged = dir.path().join("merged");
    let status = Command::new(&bin)
        .arg("merge")
        .args(&folders)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("run.json")).unwrap()).unwrap();
    assert_eq!(doc["run_id"], run_id.as_str());
    let clients = 5 * shards;
    assert_eq!(doc["settings"]["clients_planned"], clients);
    assert_eq!(doc["summary"]["counters"]["connects"], clients);
    assert_eq!(
        doc["summary"]["counters"]["errors"], 0,
        "no shard refused another's stamps"
    );
    let fanout = &doc["summary"]["expects"]["fanout"];
    assert_eq!(fanout["lost"], 0, "{fanout}");
    let sent = fanout["sent"].as_u64().unwrap();
    let received = fanout["received"].as_u64().unwrap();
    // Every client hears the talkers of every shard, not only its own shard's.
    assert!(received > clients * sent / shards, "{fanout}");
}

/// Starts a child and hands it back for `wait_with_output`, stdout and stderr captured.
trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for std::process::Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
