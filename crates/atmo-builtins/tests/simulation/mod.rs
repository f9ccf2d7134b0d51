//! Known answers of the simulation handlers.

use anyhow::{Context as _, Result, anyhow};
use serde_json::{Value, json};

use crate::support::{self, Kit, close, ctx, floats};

fn run(action: &str, params: Value) -> Result<Value> {
    support::run(Kit::Simulation, action, params)
}

fn assert_invalid(action: &str, params: Value, parameter: &str) {
    support::assert_invalid(Kit::Simulation, action, params, parameter)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn option(option_type: &str, paths: u64, antithetic: bool, seed: u64) -> Value {
    json!({"spot": 100, "strike": 100, "rate": 0.05, "volatility": 0.2, "maturity": 1,
           "optionType": option_type, "paths": paths, "antithetic": antithetic, "seed": seed})
}

#[test]
fn option_prices_match_black_scholes() -> Result<()> {
    for (kind, bs) in [("call", 10.450_583_572_185_565), ("put", 5.573_526_022_256_971)] {
        for antithetic in [false, true] {
            let r = run("OPTION_PRICING", option(kind, 100_000, antithetic, 11))?;
            assert!(close(f(&r["blackScholesPrice"]), bs, 1e-9), "{r}");
            let (price, se) = (f(&r["price"]), f(&r["standardError"]));
            assert!(se > 0.0 && close(price, bs, 3.0 * se), "{kind} {antithetic}: {price} ± {se} vs {bs}");
            let ci = floats(&r["confidenceInterval95"]);
            assert!(ci.len() == 2 && ci[0] < price && price < ci[1], "{r}");
        }
        let r = run("OPTION_PRICING", option(kind, 1_000_000, true, 3))?;
        assert!(close(f(&r["price"]), bs, 0.01 * bs), "{kind}: {}", r["price"]);
        assert_eq!(r["paths"], 1_000_000);
    }
    Ok(())
}

#[test]
fn seeds_make_every_action_reproducible() -> Result<()> {
    let cases = [
        ("OPTION_PRICING", option("call", 10_000, true, 0), "price"),
        ("RANDOM_WALK", json!({"steps": 1000, "walkers": 10}), "meanSquaredDisplacement"),
        ("GAME_OF_LIFE", json!({"width": 32, "height": 32, "density": 0.3, "generations": 10}), "population"),
        ("QUEUE_SIMULATION", json!({"arrivalRate": 0.9, "serviceRate": 1, "customers": 1000}), "meanWait"),
    ];
    for (action, params, key) in cases {
        let with = |seed: u64| {
            let mut p = params.clone();
            p["seed"] = json!(seed);
            run(action, p)
        };
        let (a, b, c) = (with(42)?, with(42)?, with(43)?);
        assert_eq!(a, b, "{action}");
        assert_ne!(a[key], c[key], "{action}");
        assert_eq!(a["seed"], 42);
    }
    Ok(())
}

#[test]
fn random_walk_spreads_like_its_step_count() -> Result<()> {
    let r = run(
        "RANDOM_WALK",
        json!({"steps": 400, "dimensions": 3, "stepSize": 0.5, "walkers": 5000, "includePath": true, "seed": 1}),
    )?;
    // E|X|² = n·s² = 100; the sample mean over 5000 walkers is within a few percent.
    assert!(close(f(&r["meanSquaredDisplacement"]), 100.0, 6.0), "{}", r["meanSquaredDisplacement"]);
    assert_eq!(r["expectedMeanSquaredDisplacement"], 100.0);
    let path = r["path"].as_array().context("path")?;
    assert_eq!(path.len(), 401);
    assert_eq!(path[0], json!([0.0, 0.0, 0.0]));
    assert_eq!(path[400], r["firstWalkerFinalPosition"]);
    // Each step moves exactly one step size along one axis.
    let (p1, p2) = (floats(&path[10]), floats(&path[11]));
    let moved: f64 = p1.iter().zip(&p2).map(|(a, b)| (a - b).abs()).sum();
    assert!(close(moved, 0.5, 1e-12));

    let r = run("RANDOM_WALK", json!({"steps": 1_000_000, "dimensions": 1, "includePath": true, "seed": 1}))?;
    assert!(r["path"].as_array().is_some_and(|p| p.len() <= 10_001), "path not bounded");
    assert!(r.get("path").is_some());
    let r = run("RANDOM_WALK", json!({"steps": 10, "seed": 1}))?;
    assert!(r.get("path").is_none());
    Ok(())
}

#[test]
fn two_body_circular_orbit_conserves_energy() -> Result<()> {
    // Equal masses 1 at distance 2, G = 1: circular speed v = sqrt(G·m / (4r)) with r = 1.
    let v = 0.5;
    let bodies = json!([
        {"mass": 1, "position": [1, 0], "velocity": [0, v]},
        {"mass": 1, "position": [-1, 0], "velocity": [0, -v]},
    ]);
    // Period 2π·r / v = 4π ≈ 12.57; simulate about two orbits.
    let r = run("N_BODY", json!({"bodies": bodies, "dt": 0.001, "steps": 25_000}))?;
    assert!(f(&r["energyDrift"]) < 1e-3, "drift {}", r["energyDrift"]);
    assert!(close(f(&r["initialEnergy"]), 0.25 - 0.5, 1e-12), "{}", r["initialEnergy"]);
    // Still circular: both bodies at distance 1 from the centre of mass.
    for b in r["bodies"].as_array().context("bodies")? {
        let p = floats(&b["position"]);
        assert!(close(p[0].hypot(p[1]), 1.0, 1e-3), "{b}");
    }
    // 3-D input keeps its dimension.
    let r = run(
        "N_BODY",
        json!({"bodies": [{"mass": 1, "position": [0, 0, 0], "velocity": [1, 0, 0]}], "dt": 0.5, "steps": 4}),
    )?;
    assert_eq!(r["bodies"][0]["position"], json!([2.0, 0.0, 0.0]));
    Ok(())
}

fn alive(r: &Value) -> Vec<(i64, i64)> {
    let mut cells: Vec<(i64, i64)> = r["aliveCells"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| Some((c[0].as_i64()?, c[1].as_i64()?))).collect())
        .unwrap_or_default();
    cells.sort_unstable();
    cells
}

#[test]
fn glider_moves_diagonally_and_blinker_oscillates() -> Result<()> {
    let glider = [(1, 0), (2, 1), (0, 2), (1, 2), (2, 2)];
    for wrap in [true, false] {
        let r =
            run("GAME_OF_LIFE", json!({"width": 10, "height": 10, "cells": glider, "generations": 4, "wrap": wrap}))?;
        let mut want: Vec<(i64, i64)> = glider.iter().map(|(x, y)| (x + 1, y + 1)).collect();
        want.sort_unstable();
        assert_eq!(alive(&r), want, "wrap {wrap}");
        assert_eq!(r["population"], json!([5, 5, 5, 5, 5]));
    }
    // Around the torus: a glider near the corner reappears at the opposite side.
    let corner: Vec<(i64, i64)> = glider.iter().map(|(x, y)| (x + 7, y + 7)).collect();
    let r = run("GAME_OF_LIFE", json!({"width": 10, "height": 10, "cells": corner, "generations": 4}))?;
    let mut want: Vec<(i64, i64)> = glider.iter().map(|(x, y)| ((x + 8) % 10, (y + 8) % 10)).collect();
    want.sort_unstable();
    assert_eq!(alive(&r), want);

    let blinker = json!([[1, 2], [2, 2], [3, 2]]);
    let after = |n: u64| run("GAME_OF_LIFE", json!({"width": 5, "height": 5, "cells": blinker, "generations": n}));
    assert_eq!(alive(&after(1)?), [(2, 1), (2, 2), (2, 3)]);
    assert_eq!(alive(&after(2)?), [(1, 2), (2, 2), (3, 2)]);
    assert_eq!(alive(&after(7)?), alive(&after(1)?));
    Ok(())
}

fn series(r: &Value, key: &str) -> Vec<f64> {
    r["series"].as_array().map(|a| a.iter().map(|p| f(&p[key])).collect()).unwrap_or_default()
}

#[test]
fn sir_conserves_the_population_and_decays_without_infection() -> Result<()> {
    let r = run("SIR_MODEL", json!({"population": 1000, "initialInfected": 10, "beta": 0, "gamma": 0.1, "days": 50}))?;
    let (s, i) = (series(&r, "susceptible"), series(&r, "infected"));
    assert_eq!(s.len(), 51);
    assert!(s.iter().all(|&x| x == 990.0));
    assert!(i.windows(2).all(|w| w[1] < w[0]));
    // I(t) = I₀·e^(−γt), to RK4 accuracy.
    assert!(close(i[50], 10.0 * (-5.0f64).exp(), 1e-6), "{}", i[50]);
    assert_eq!((r["peakInfected"].clone(), r["peakDay"].clone()), (json!(10.0), json!(0.0)));

    let r = run(
        "SIR_MODEL",
        json!({"population": 10_000, "initialInfected": 1, "beta": 0.3, "gamma": 0.1, "days": 200, "dt": 0.05}),
    )?;
    let (s, i, rec) = (series(&r, "susceptible"), series(&r, "infected"), series(&r, "recovered"));
    assert!(s.iter().zip(&i).zip(&rec).all(|((s, i), r)| close(s + i + r, 10_000.0, 1e-6)));
    let peak = f(&r["peakInfected"]);
    assert!(i.iter().all(|&x| x <= peak + 1e-9) && peak > 1000.0, "peak {peak}");
    assert!(f(&r["peakDay"]) > 0.0 && f(&r["peakDay"]) < 200.0);
    // Final size relation for R₀ = 3: s∞ = e^(−R₀(1 − s∞)) gives s∞ ≈ 0.0595.
    assert!(close(f(&r["finalSusceptible"]) / 10_000.0, 0.0595, 0.002), "{}", r["finalSusceptible"]);
    Ok(())
}

#[test]
fn mm1_queue_matches_the_analytic_wait() -> Result<()> {
    let r = run(
        "QUEUE_SIMULATION",
        json!({"arrivalRate": 0.5, "serviceRate": 1, "servers": 1, "customers": 200_000, "seed": 5}),
    )?;
    assert!(close(f(&r["meanWait"]), 1.0, 0.1), "Wq {}", r["meanWait"]);
    assert!(close(f(&r["meanTimeInSystem"]), 2.0, 0.2), "W {}", r["meanTimeInSystem"]);
    assert!(close(f(&r["utilization"]), 0.5, 0.02), "{}", r["utilization"]);
    assert_eq!(r["unstable"], false);
    // Erlang C for c = 1 is ρ, and Wq = ρ / (μ − λ).
    assert!(close(f(&r["analytic"]["probabilityOfWaiting"]), 0.5, 1e-12));
    assert!(close(f(&r["analytic"]["meanWait"]), 1.0, 1e-12));

    let r = run(
        "QUEUE_SIMULATION",
        json!({"arrivalRate": 3, "serviceRate": 1, "servers": 4, "customers": 100_000, "seed": 5}),
    )?;
    let wq = f(&r["analytic"]["meanWait"]);
    assert!(close(f(&r["meanWait"]), wq, 0.15 * wq), "{} vs {wq}", r["meanWait"]);

    let r = run("QUEUE_SIMULATION", json!({"arrivalRate": 2, "serviceRate": 1, "customers": 1000, "seed": 5}))?;
    assert_eq!((r["unstable"].clone(), r["analytic"].clone()), (json!(true), Value::Null));
    Ok(())
}

#[test]
fn invalid_input_names_the_parameter() {
    let opt = option("call", 1000, true, 1);
    let with = |base: &Value, key: &str, v: Value| {
        let mut p = base.clone();
        p[key] = v;
        p
    };
    assert_invalid("OPTION_PRICING", with(&opt, "spot", json!(0)), "spot");
    assert_invalid("OPTION_PRICING", with(&opt, "volatility", json!(-0.2)), "volatility");
    assert_invalid("OPTION_PRICING", with(&opt, "optionType", json!("asian")), "optionType");
    assert_invalid("OPTION_PRICING", with(&opt, "paths", json!(100_000_000)), "paths");
    assert_invalid("OPTION_PRICING", with(&opt, "seed", json!(-1)), "seed");
    assert_invalid("RANDOM_WALK", json!({"steps": 10, "dimensions": 4}), "dimensions");
    assert_invalid("RANDOM_WALK", json!({"steps": 0}), "steps");
    assert_invalid("RANDOM_WALK", json!({"steps": 10_000_000, "walkers": 100}), "walkers");
    let body = json!({"mass": 1, "position": [0, 0], "velocity": [0, 0]});
    assert_invalid("N_BODY", json!({"bodies": [], "dt": 0.1, "steps": 1}), "bodies");
    assert_invalid(
        "N_BODY",
        json!({"bodies": [{"mass": -1, "position": [0, 0], "velocity": [0, 0]}], "dt": 0.1, "steps": 1}),
        "bodies",
    );
    assert_invalid(
        "N_BODY",
        json!({"bodies": [body, {"mass": 1, "position": [0, 0, 1], "velocity": [0, 0, 0]}], "dt": 0.1, "steps": 1}),
        "bodies",
    );
    assert_invalid("N_BODY", json!({"bodies": [body], "dt": 0, "steps": 1}), "dt");
    assert_invalid("N_BODY", json!({"bodies": [body], "dt": 0.1, "steps": 1, "softening": -1}), "softening");
    assert_invalid("GAME_OF_LIFE", json!({"width": 2000, "height": 10, "density": 0.5}), "width");
    assert_invalid("GAME_OF_LIFE", json!({"width": 10, "height": 10}), "cells");
    assert_invalid("GAME_OF_LIFE", json!({"width": 10, "height": 10, "cells": [[10, 0]]}), "cells");
    assert_invalid("GAME_OF_LIFE", json!({"width": 10, "height": 10, "density": 1.5}), "density");
    assert_invalid(
        "GAME_OF_LIFE",
        json!({"width": 1024, "height": 1024, "density": 0.5, "generations": 100_000}),
        "generations",
    );
    let sir = json!({"population": 100, "initialInfected": 1, "beta": 0.3, "gamma": 0.1, "days": 10});
    assert_invalid("SIR_MODEL", with(&sir, "initialInfected", json!(101)), "initialInfected");
    assert_invalid("SIR_MODEL", with(&sir, "population", json!(0)), "population");
    assert_invalid("SIR_MODEL", with(&sir, "dt", json!(0)), "dt");
    assert_invalid("SIR_MODEL", with(&sir, "beta", json!("high")), "beta");
    let q = json!({"arrivalRate": 1, "serviceRate": 2});
    assert_invalid("QUEUE_SIMULATION", with(&q, "arrivalRate", json!(0)), "arrivalRate");
    assert_invalid("QUEUE_SIMULATION", with(&q, "servers", json!(0)), "servers");
    assert_invalid("QUEUE_SIMULATION", with(&q, "customers", json!(100_000_000)), "customers");
}

#[test]
fn manifest_declares_every_action_and_accepts_valid_params() -> Result<()> {
    let m = atmo_builtins::simulation_manifest();
    let h = atmo_builtins::simulation_handlers();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("simulation", "1.0.0"));
    assert_eq!(m.max_concurrent_tasks, Some(4));
    assert_eq!(m.default_timeout, Some(std::time::Duration::from_secs(60)));
    let ids: Vec<&str> = m.action_ids().collect();
    assert_eq!(ids, ["OPTION_PRICING", "RANDOM_WALK", "N_BODY", "GAME_OF_LIFE", "SIR_MODEL", "QUEUE_SIMULATION"]);
    for a in &m.actions {
        assert!(a.retryable && h.get(&a.action_id).is_some_and(|h| h.is_sync()), "{}", a.action_id);
        assert!(a.parameters.iter().any(|p| p.name == "seed" && !p.required), "{}", a.action_id);
    }
    assert_eq!(h.len(), m.actions.len());
    // Defaults are filled in by the schema.
    let v = m.action("OPTION_PRICING").map(|a| a.validate(option("put", 10, true, 1)));
    assert!(v.is_some_and(|v| v.is_ok()));
    let v = m
        .action("N_BODY")
        .map(|a| {
            a.validate(json!({"bodies": [{"mass": 1, "position": [0, 0], "velocity": [0, 0]}], "dt": 1, "steps": 1}))
        })
        .context("N_BODY")?
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!((v["G"].clone(), v["softening"].clone()), (json!(1.0), json!(0.0)));
    // The schema rejects out-of-range values too, naming the parameter.
    let rejects = |action: &str, params: Value, parameter: &str| {
        let Some(def) = m.action(action) else { panic!("no {action}") };
        match def.validate(params.clone()) {
            Ok(v) => panic!("{action} accepted {params} as {v}"),
            Err(e) => assert!(e.issues().iter().any(|i| i.parameter == parameter), "{action}: {e}"),
        }
    };
    rejects("RANDOM_WALK", json!({"steps": 10, "dimensions": 0}), "dimensions");
    rejects("GAME_OF_LIFE", json!({"width": 10, "height": 2048}), "height");
    rejects("OPTION_PRICING", with_type(option("call", 10, true, 1), "binary"), "optionType");
    Ok(())
}

fn with_type(mut p: Value, t: &str) -> Value {
    p["optionType"] = json!(t);
    p
}

#[test]
fn cancelled_runs_stop() {
    let ctx = ctx("OPTION_PRICING");
    ctx.cancel.cancel();
    let handlers = atmo_builtins::simulation_handlers();
    let r = handlers.get("OPTION_PRICING").map(|h| h.call_blocking(&ctx, &option("call", 10_000_000, true, 1)));
    assert!(r.is_some_and(|r| r.is_err()));
}
