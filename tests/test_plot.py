"""torch-gdla plot / compare, --output and the progress bar of the fit command."""
from pathlib import Path

import pytest
import torch

from torch_gdla import matrices
from torch_gdla.cli import main
from torch_gdla.compare import load_comparisons, run_comparison
from torch_gdla.fit_cli import GdlaCLI, _interactive
from torch_gdla.plot import plot_runs, read_run

pytest.importorskip("matplotlib")

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(directory: Path, losses, residuals=None, every=10) -> Path:
    """A metrics.csv as CSVLogger writes it for SolverModule (one row per block)."""
    directory.mkdir(parents=True)
    header = "loss,residual,step" if residuals else "loss,step"
    rows = [f"{loss},{res},{every * (k + 1)}" if residuals else f"{loss},{every * (k + 1)}"
            for k, (loss, res) in enumerate(zip(losses, residuals or losses))]
    (directory / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")
    return directory


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5_000


def test_plot_two_runs_draws_one_curve_per_run_per_metric(tmp_path):
    a = write_run(tmp_path / "runs" / "fast" / "version_0", [1.0, 1e-3, 1e-6], [1.0, 0.1, 0.01])
    b = write_run(tmp_path / "runs" / "slow" / "version_0", [1.0, 0.5, 0.25], [1.0, 0.7, 0.5])
    figure = plot_runs([a, b], tmp_path / "loss.png", title="lesson")
    check_png(tmp_path / "loss.png")
    loss_axis, residual_axis = figure.axes
    assert [len(loss_axis.get_lines()), len(residual_axis.get_lines())] == [2, 2]
    assert loss_axis.get_yscale() == "log" and residual_axis.get_yscale() == "log"
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["fast", "slow"]  # run names
    assert list(loss_axis.get_lines()[0].get_xdata()) == [10, 20, 30]
    assert list(loss_axis.get_lines()[0].get_ydata()) == [1.0, 1e-3, 1e-6]


def test_run_dir_resolution_newest_version_and_zero_losses(tmp_path):
    write_run(tmp_path / "run" / "version_0", [5.0])
    write_run(tmp_path / "run" / "version_2", [1.0, 0.0, 1e-3])  # a loss of exactly 0 cannot go on a log axis
    write_run(tmp_path / "run" / "version_10", [2.0, 1.0])
    log = read_run(tmp_path / "run")
    assert log.name == "run" and log.path.name == "version_10"
    figure = plot_runs([tmp_path / "run" / "version_2"], tmp_path / "one.png")
    assert len(figure.axes) == 1  # no residual logged: one panel
    assert list(figure.axes[0].get_lines()[0].get_ydata()) == [1.0, 1e-3]


def test_plot_command_and_its_errors(tmp_path, capsys):
    a = write_run(tmp_path / "a", [1.0, 0.1], [1.0, 0.5])
    main(["plot", str(a), "-o", str(tmp_path / "cli.png"), "--label", "run A", "--title", "one\\ntwo"])
    check_png(tmp_path / "cli.png")
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path / "missing"), "-o", str(tmp_path / "x.png")])
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png")])
    assert "no metrics.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", str(a), "--label", "1", "--label", "2", "-o", str(tmp_path / "x.png")])
    assert "2 labels for 1 runs" in capsys.readouterr().err


def test_tensorboard_logs_need_tensorboard(tmp_path):
    try:
        import tensorboard  # noqa: F401
        pytest.skip("tensorboard is installed")
    except ImportError:
        pass
    run = tmp_path / "tb"
    run.mkdir()
    (run / "events.out.tfevents.1.host").write_bytes(b"")
    with pytest.raises(ImportError, match="pip install tensorboard"):
        read_run(run)


def test_compare_runs_each_config_and_plots_the_logged_losses(tmp_path):
    spec = tmp_path / "compare.yaml"
    spec.write_text(f"""
save_dir: {tmp_path / 'logs'}
comparisons:
  - name: tiny
    title: "random vs diagonal"
    output: {tmp_path / 'tiny.png'}
    config: {CONFIGS / 'inverse_random.yaml'}
    set: {{trainer.max_steps: 20, model.steps_per_block: 5}}
    runs:
      - {{name: random, label: random matrix}}
      - {{name: diagonal, config: {CONFIGS / 'inverse_diagonal.yaml'}, set: {{trainer.max_steps: 10}}}}
""")
    main(["compare", "--config", str(spec)])
    check_png(tmp_path / "tiny.png")
    random_log = read_run(tmp_path / "logs" / "tiny" / "random")
    steps, losses = random_log.curves["loss"]
    assert steps == [5, 10, 15, 20]
    assert 0 < losses[-1] < losses[0] < 0.7897  # SGD(0.9, 0.9) from the tutorial's start (loss 0.7897 at step 1)
    assert read_run(tmp_path / "logs" / "tiny" / "diagonal").curves["loss"][0] == [5, 10]


def test_shipped_comparisons_parse_and_the_optimizers_run(tmp_path):
    comparisons, save_dir = load_comparisons(CONFIGS / "compare_inverse.yaml", output_dir=tmp_path)
    assert save_dir == Path("runs/compare")
    by_name = {c.name: c for c in comparisons}
    assert [r.name for r in by_name["random_vs_diagonal"].runs] == ["random", "diagonal"]
    assert "converges faster" in by_name["random_vs_diagonal"].title
    optimizers = by_name["optimizers"]
    assert [r.name for r in optimizers.runs] == ["sgd_momentum", "adam", "lbfgs", "default"]
    assert optimizers.runs[-1].overrides["model.optimizer"] is None  # null = the library default
    for run in optimizers.runs:  # a few steps each: checks every optimizer config is accepted
        run.overrides.update({"trainer.max_steps": 3})
    run_comparison(optimizers, tmp_path / "logs")
    check_png(tmp_path / "optimizers_inverse.png")
    final = {r.name: read_run(tmp_path / "logs" / "optimizers" / r.name).curves["loss"][1][-1] for r in optimizers.runs}
    assert final["lbfgs"] < 1e-6 and final["default"] < final["sgd_momentum"]


def test_compare_file_errors_name_the_key(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("comparisons:\n  - {name: x, output: x.png, runs: [{name: a, colour: red}]}\n")
    with pytest.raises(ValueError, match=r"comparisons\[0\].runs\[0\] has unknown key\(s\) colour"):
        load_comparisons(spec)
    spec.write_text("comparisons:\n  - {name: x, output: x.png, runs: [{name: a, config: nowhere.yaml}]}\n")
    with pytest.raises(FileNotFoundError, match="relative to the comparison file"):
        load_comparisons(spec)


# --- the fit command: --output and the progress bar ---------------------------------------------

def fit(tmp_path, *extra):
    return GdlaCLI(args=["fit", "--config", str(CONFIGS / "inverse_random.yaml"), "--trainer.max_steps", "20",
                         "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
                         "--trainer.default_root_dir", str(tmp_path), *extra])  # config.yaml goes there


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".csv"])
def test_fit_output_writes_the_solution(tmp_path, suffix, capsys):
    path = tmp_path / f"solution{suffix}"
    cli = fit(tmp_path, "--output", str(path))
    assert torch.allclose(matrices.load(path).float(), cli.model.result.solution)
    assert f"solution written to {path}" in capsys.readouterr().out


def test_fit_output_rejects_an_unknown_extension_before_running(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fit(tmp_path, "--output", str(tmp_path / "solution.xlsx"))
    assert "unsupported extension '.xlsx'" in capsys.readouterr().err


def test_progress_bar_is_off_when_not_a_terminal_or_in_ci(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert not _interactive()
    assert fit(tmp_path).trainer.progress_bar_callback is None
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert _interactive()
    monkeypatch.setenv("CI", "true")
    assert not _interactive()


def test_progress_bar_shows_loss_and_residual(tmp_path):
    cli = fit(tmp_path, "--trainer.enable_progress_bar", "true")
    shown = cli.trainer.progress_bar_callback.get_metrics(cli.trainer, cli.model)
    assert {"loss", "residual"} <= set(shown)
    assert float(shown["loss"]) == pytest.approx(cli.model.result.history[-1].item(), rel=1e-3)


def test_plot_skips_versions_without_metrics_and_says_so(tmp_path, capsys):
    write_run(tmp_path / "run" / "version_0", [1.0, 0.1], [1.0, 0.5])
    (tmp_path / "run" / "version_1").mkdir()
    (tmp_path / "run" / "version_1" / "config.yaml").write_text("model: {}\n")  # a run that logged nothing
    (tmp_path / "run" / "version_2").mkdir()
    (tmp_path / "run" / "version_2" / "metrics.csv").write_text("")  # one stopped before its first row
    log = read_run(tmp_path / "run")
    assert log.path.name == "version_0" and [p.name for p in log.skipped] == ["version_1", "version_2"]
    main(["plot", str(tmp_path / "run"), "-o", str(tmp_path / "run.png")])
    check_png(tmp_path / "run.png")
    out = capsys.readouterr().out
    assert f"skipped {tmp_path / 'run' / 'version_1'}: it holds no metrics" in out


def test_compare_writes_figures_beside_the_logs_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths of the shipped file resolve here
    comparisons, save_dir = load_comparisons(CONFIGS / "compare_inverse.yaml")
    assert [c.output for c in comparisons] == [save_dir / "random_vs_diagonal" / "inverse_random_vs_diagonal.png",
                                               save_dir / "optimizers" / "optimizers_inverse.png"]
    comparisons, save_dir = load_comparisons(CONFIGS / "compare_inverse.yaml", save_dir=tmp_path / "logs")
    assert save_dir == tmp_path / "logs" and comparisons[0].output.parent == tmp_path / "logs" / "random_vs_diagonal"
    comparisons, _ = load_comparisons(CONFIGS / "compare_inverse.yaml", output_dir="docs/figures")
    assert comparisons[1].output == Path("docs/figures/optimizers_inverse.png")  # the gallery, when asked for
    spec = tmp_path / "compare.yaml"
    spec.write_text(f"comparisons:\n  - {{name: tiny, output: {tmp_path / 'abs.png'},\n"
                    f"     config: {CONFIGS / 'inverse_random.yaml'}, set: {{trainer.max_steps: 4}}, runs: [{{name: a}}]}}\n")
    (comparison,), _ = load_comparisons(spec)
    assert comparison.output == tmp_path / "abs.png"  # an absolute path is used as given
    main(["compare", "--config", str(spec), "--save_dir", str(tmp_path / "logs")])
    check_png(tmp_path / "abs.png")
    assert not (tmp_path / "docs").exists()
