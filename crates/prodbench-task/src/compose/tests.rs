use super::*;

/// A task's `environment/` with a sidecar's build context and an env file.
fn environment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sidecar")).unwrap();
    std::fs::write(dir.path().join("sidecar/Dockerfile"), "FROM debian:bookworm-slim\n").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM debian:bookworm-slim\n").unwrap();
    std::fs::write(dir.path().join("db.env"), "# comment\nexport A=from-file\nB=\"quoted\"\n").unwrap();
    std::fs::write(dir.path().join("init.sql"), "select 1;\n").unwrap();
    dir
}

fn check(env: &Path, text: &str) -> (Option<Compose>, Vec<String>) {
    let (compose, diagnostics) = parse(Path::new("environment/docker-compose.yaml"), env, text);
    (compose, diagnostics.iter().map(ToString::to_string).collect())
}

fn errors_of(text: &str) -> Vec<String> {
    let env = environment();
    let (compose, diagnostics) = check(env.path(), text);
    assert!(compose.is_none(), "expected errors for:\n{text}\ngot {compose:#?}");
    diagnostics.into_iter().filter(|d| d.contains(": error: ")).collect()
}

const EVERY_KEY: &str = r#"
version: "3.8"
x-common: &common
  init: true
services:
  main:
    environment:
      API_URL: http://api:8080
    depends_on:
      api:
        condition: service_healthy
    volumes:
      - shared:/shared
    cpus: 2
    mem_limit: 1g
    working_dir: /app
  api:
    <<: *common
    build:
      context: ./sidecar
      dockerfile: Dockerfile
      args:
        VERSION: "1.2"
    command: ["sh", "-c", "echo $$HOME && sleep 1"]
    entrypoint: /bin/sh -c 'exec "$$@"' --
    environment:
      - MODE=serve
      - EMPTY=
    env_file: db.env
    expose: ["8080"]
    ports:
      - 9000-9001
    healthcheck:
      test: ["CMD-SHELL", "nc -z localhost 8080"]
      interval: 1m30s
      timeout: 500ms
      retries: 5
      start_period: 2s
      start_interval: 100ms
    volumes:
      - shared:/data:ro
      - ./init.sql:/init.sql:ro
      - type: tmpfs
        target: /scratch
      - /anonymous
    working_dir: /srv
    user: "1000:1000"
    cpus: "0.5"
    mem_limit: 512m
    restart: on-failure:3
    depends_on: [setup]
  setup:
    image: debian:bookworm-slim
    command: true
    tmpfs: /run
    restart: "no"
volumes:
  shared:
"#;

#[test]
fn every_supported_key_is_read() {
    let env = environment();
    let (compose, diagnostics) = check(env.path(), EVERY_KEY);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    let compose = compose.unwrap();
    assert_eq!(compose.volumes, ["shared"]);
    let names: Vec<&str> = compose.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["setup", "api"], "dependencies first");
    let api = &compose.services[1];
    let context = env.path().canonicalize().unwrap().join("sidecar");
    assert_eq!(
        api.image,
        ServiceImage::Build(BuildSpec { context, dockerfile: "Dockerfile".into(), args: BTreeMap::from([("VERSION".into(), "1.2".into())]) })
    );
    assert_eq!(api.command.as_deref().unwrap(), ["sh", "-c", "echo $HOME && sleep 1"]);
    assert_eq!(api.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c", "exec \"$@\"", "--"]);
    let environment: Vec<(&str, &str)> = api.settings.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(environment, [("A", "from-file"), ("B", "quoted"), ("EMPTY", ""), ("MODE", "serve")]);
    assert_eq!(api.settings.ports, [8080, 9000, 9001]);
    assert_eq!(
        api.healthcheck,
        Some(Healthcheck::Check {
            test: HealthTest::Shell("nc -z localhost 8080".into()),
            interval: Some(Duration::from_secs(90)),
            timeout: Some(Duration::from_millis(500)),
            retries: Some(5),
            start_period: Some(Duration::from_secs(2)),
            start_interval: Some(Duration::from_millis(100)),
        })
    );
    assert_eq!(
        api.settings.volumes,
        [
            VolumeMount::Named { volume: "shared".into(), target: "/data".into(), read_only: true },
            VolumeMount::Bind { source: env.path().canonicalize().unwrap().join("init.sql"), target: "/init.sql".into() },
            VolumeMount::Tmpfs { target: "/scratch".into() },
            VolumeMount::Anonymous { target: "/anonymous".into() },
        ]
    );
    assert_eq!((api.settings.working_dir.as_deref(), api.settings.user.as_deref()), (Some("/srv"), Some("1000:1000")));
    assert_eq!((api.settings.cpus, api.settings.mem_limit_bytes), (Some(0.5), Some(512 << 20)));
    assert_eq!(api.restart, RestartPolicy::OnFailure { max_retries: Some(3) });
    assert!(api.settings.init, "merged from the x-common anchor");
    assert_eq!(api.settings.depends_on, [Dependency { service: "setup".into(), condition: DependsCondition::Started }]);
    let setup = &compose.services[0];
    assert_eq!(setup.image, ServiceImage::Image("debian:bookworm-slim".into()));
    assert_eq!(setup.settings.volumes, [VolumeMount::Tmpfs { target: "/run".into() }]);
    assert_eq!(setup.restart, RestartPolicy::No);
    let main = &compose.main.settings;
    assert_eq!(main.environment["API_URL"], "http://api:8080");
    assert_eq!(main.depends_on, [Dependency { service: "api".into(), condition: DependsCondition::Healthy }]);
    assert_eq!((main.cpus, main.mem_limit_bytes, main.working_dir.as_deref()), (Some(2.0), Some(1 << 30), Some("/app")));
}

#[test]
fn health_tests_in_every_form() {
    let forms = [
        ("[\"CMD\", \"curl\", \"-f\", \"http://localhost\"]", Some(HealthTest::Exec(vec!["curl".into(), "-f".into(), "http://localhost".into()]))),
        ("[\"CMD-SHELL\", \"exit 0\"]", Some(HealthTest::Shell("exit 0".into()))),
        ("exit 0", Some(HealthTest::Shell("exit 0".into()))),
        ("[\"NONE\"]", None),
    ];
    for (test, expected) in forms {
        let env = environment();
        let text = format!("services:\n  a:\n    image: x\n    healthcheck:\n      test: {test}\n");
        let (compose, diagnostics) = check(env.path(), &text);
        assert!(diagnostics.is_empty(), "{test}: {diagnostics:?}");
        let healthcheck = compose.unwrap().services[0].healthcheck.clone().unwrap();
        match (healthcheck, expected) {
            (Healthcheck::Disabled, None) => {}
            (Healthcheck::Check { test: got, .. }, Some(want)) => assert_eq!(got, want),
            (got, want) => panic!("{test}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn unsupported_keys_are_reported_with_their_line() {
    let env = environment();
    let text = "services:\n  a:\n    image: x\n    privileged: true\n    container_name: fixed\n    colour: blue\nsecrets:\n  s: {}\n";
    let (compose, diagnostics) = check(env.path(), text);
    assert!(compose.is_none());
    let expected = [
        "environment/docker-compose.yaml:4: error: `services.a.privileged`: not supported",
        "environment/docker-compose.yaml:5: warning: `services.a.container_name`: ignored",
        "environment/docker-compose.yaml:6: error: `services.a.colour`: not supported",
        "environment/docker-compose.yaml:7: error: `secrets`: not supported",
    ];
    for want in expected {
        assert!(diagnostics.iter().any(|d| d.starts_with(want)), "{want}\nnot in {diagnostics:#?}");
    }
    assert_eq!(diagnostics.len(), expected.len(), "{diagnostics:#?}");
}

#[test]
fn every_refused_and_warned_service_key_says_which() {
    for key in ["privileged", "cap_add", "network_mode", "deploy", "extends", "devices", "pid", "links"] {
        let errors = errors_of(&format!("services:\n  a:\n    image: x\n    {key}: y\n"));
        assert!(errors[0].starts_with(&format!("environment/docker-compose.yaml:4: error: `services.a.{key}`")), "{errors:?}");
    }
    for key in ["hostname", "networks", "labels", "logging", "stop_grace_period", "platform", "pull_policy"] {
        let env = environment();
        let (compose, diagnostics) = check(env.path(), &format!("services:\n  a:\n    image: x\n    {key}: y\n"));
        assert!(compose.is_some(), "{key}: {diagnostics:?}");
        assert!(diagnostics[0].starts_with(&format!("environment/docker-compose.yaml:4: warning: `services.a.{key}`: ignored")), "{diagnostics:?}");
    }
}

#[test]
fn a_bind_outside_environment_is_refused() {
    for source in ["../tests", "/etc", "~/secrets", "./sidecar/../../solution"] {
        let errors = errors_of(&format!("services:\n  a:\n    image: x\n    volumes:\n      - {source}:/mnt:ro\n"));
        assert!(
            errors.iter().any(|e| e.starts_with("environment/docker-compose.yaml:5: error: `services.a.volumes`") && e.contains("outside environment/")),
            "{source}: {errors:?}"
        );
    }
    let errors = errors_of("services:\n  a:\n    build: ..\n");
    assert!(errors[0].contains("outside environment/"), "{errors:?}");
}

#[test]
fn a_writable_bind_is_mounted_read_only_with_a_warning() {
    let env = environment();
    let (compose, diagnostics) = check(env.path(), "services:\n  a:\n    image: x\n    volumes:\n      - ./init.sql:/init.sql\n");
    assert!(compose.is_some());
    assert!(diagnostics[0].starts_with("environment/docker-compose.yaml:5: warning:") && diagnostics[0].contains("read-only"), "{diagnostics:?}");
}

#[test]
fn depends_on_an_unknown_service_or_in_a_cycle_is_an_error() {
    let errors = errors_of("services:\n  a:\n    image: x\n    depends_on: [ghost]\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:2: error: `services.a.depends_on`: depends on \"ghost\""), "{errors:?}");
    let errors =
        errors_of("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      a:\n        condition: service_started\n");
    assert!(errors[0].contains("form a cycle"), "{errors:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n    depends_on: [a]\n");
    assert!(errors[0].contains("depends on itself"), "{errors:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_ready\n  b:\n    image: x\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:6: error: `services.a.depends_on.b.condition`: unknown condition"), "{errors:?}");
}

#[test]
fn durations_sizes_and_words() {
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
    for bad in ["10", "", "1x", "s", "1m30"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
    assert_eq!(parse_bytes("512m"), Some(512 << 20));
    assert_eq!(parse_bytes("1GB"), Some(1 << 30));
    assert_eq!(parse_bytes("100"), Some(100));
    assert_eq!(parse_bytes("lots"), None);
    assert_eq!(split_words(r#"sh -c 'echo "a b"' x\ y "q\"t""#).unwrap(), ["sh", "-c", "echo \"a b\"", "x y", "q\"t"]);
    assert_eq!(split_words("open 'quote"), None);
    let errors = errors_of("services:\n  a:\n    image: x\n    healthcheck:\n      test: exit 0\n      interval: 10\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:6: error: `services.a.healthcheck.interval`"), "{errors:?}");
}

#[test]
fn interpolation_takes_defaults_and_refuses_the_hosts_variables() {
    assert_eq!(interpolate("a $$b ${C:-dflt} ${D-x} $").unwrap(), "a $b dflt x $");
    assert_eq!(interpolate("${HOME}"), Err("HOME".into()));
    assert_eq!(interpolate("$USER/x"), Err("USER".into()));
    let errors = errors_of("services:\n  a:\n    image: x\n    environment:\n      P: $HOME\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:5: error: `services.a.environment.P`: `$HOME`"), "{errors:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n    environment:\n      - FROM_HOST\n");
    assert!(errors[0].contains("no value"), "{errors:?}");
}

#[test]
fn main_takes_settings_but_not_an_image_or_a_command() {
    let errors = errors_of("services:\n  main:\n    image: other\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:3: error: `services.main.image`"), "{errors:?}");
    let env = environment();
    let (compose, diagnostics) = check(env.path(), "services:\n  main:\n    build: .\n    command: sleep infinity\n");
    assert!(compose.is_some(), "restating main's own build is fine: {diagnostics:?}");
    assert!(diagnostics[0].starts_with("environment/docker-compose.yaml:4: warning: `services.main.command`: ignored on main"), "{diagnostics:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n    depends_on:\n      main:\n        condition: service_healthy\n");
    assert!(errors[0].contains("main can only be waited for as service_started"), "{errors:?}");
}

#[test]
fn structural_mistakes_name_their_line() {
    let errors = errors_of("services:\n  a:\n    command: true\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:2: error: `services.a`: a service needs `build` or `image`"), "{errors:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n    volumes:\n      - data:/data\n");
    assert!(errors[0].contains("not declared under the top-level `volumes`"), "{errors:?}");
    let errors = errors_of("services: [a]\n");
    assert!(errors[0].contains("expected a mapping of service names, found a list"), "{errors:?}");
    let errors = errors_of("services:\n  a:\n    image: x\n  a:\n    image: y\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:4: error: not valid YAML: the key \"a\" is given twice"), "{errors:?}");
    let errors = errors_of("volumes:\n  v:\n    external: true\nservices: {}\n");
    assert!(errors[0].starts_with("environment/docker-compose.yaml:3: error: `volumes.v.external`"), "{errors:?}");
}

#[test]
fn a_task_reads_its_compose_file_and_refuses_the_names_harbor_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let files = crate::scaffold::TaskFiles::new("compose").file("environment/docker-compose.yaml", "services:\n  cache:\n    image: debian:bookworm-slim\n");
    let task = files.create(dir.path()).unwrap();
    assert!(task.has_services() && task.has_docker_environment());
    assert_eq!(task.compose.unwrap().services[0].name, "cache");
    std::fs::write(dir.path().join("environment/compose.yml"), "services: {}\n").unwrap();
    let check = crate::load_task(dir.path());
    let errors: Vec<String> = check.errors().map(ToString::to_string).collect();
    assert!(check.task.is_none() && errors[0].contains("compose.yml: error: Harbor reads only environment/docker-compose.yaml"), "{errors:?}");
}

#[test]
fn artifacts_and_collect_hooks_name_known_services() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "artifacts = [{ source = \"/tmp/x\", service = \"nowhere\" }]\n[[verifier.collect]]\nservice = \"ghost\"\ncommand = \"true\"\n";
    // Top-level keys come before `[task]`, so this task.toml replaces the scaffold's.
    let files = crate::scaffold::TaskFiles::new("c").file("task.toml", toml).file("environment/docker-compose.yaml", "services:\n  db:\n    image: x\n");
    let errors = files.create(dir.path()).unwrap_err();
    let keys: Vec<Option<&str>> = errors.iter().filter(|d| d.is_error()).map(|d| d.key.as_deref()).collect();
    assert_eq!(keys, [Some("artifacts[0].service"), Some("verifier.collect[0].service")], "{errors:?}");
}
