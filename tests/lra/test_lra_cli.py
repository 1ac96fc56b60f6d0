"""`ssm data` lists, generates and prepares the LRA tasks."""
import pytest

from ssm.cli import data_parser, main


def test_data_help_lists_the_lra_commands(capsys):
    for group, names in (("prepare", ["lra-listops", "lra-text", "lra-retrieval", "lra-image", "lra-pathfinder",
                                      "lra-pathx"]), ("generate", ["lra-listops", "lra-pathfinder"])):
        with pytest.raises(SystemExit):
            data_parser().parse_args([group, "--help"])
        out = capsys.readouterr().out
        assert all(n in out for n in names), out


def test_generate_then_prepare_from_the_command_line(tmp_path, capsys):
    assert main(["data", "generate", "lra-listops", "--out", str(tmp_path / "lo"), "--train", "3", "--val", "1",
                 "--test", "1", "--workers", "1"]) == 0
    assert main(["data", "prepare", "lra-listops", "--source", str(tmp_path / "lo"),
                 "--data_dir", str(tmp_path / "data")]) == 0
    assert main(["data", "generate", "lra-pathfinder", "--size", "64", "--out", str(tmp_path / "pf"), "--n", "2",
                 "--workers", "1"]) == 0
    assert main(["data", "prepare", "lra-pathfinder", "--resolution", "64", "--source", str(tmp_path / "pf"),
                 "--data_dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "prepared lra-listops" in out and "prepared lra-pathfinder" in out
    assert (tmp_path / "data" / "lra" / "pathfinder64" / "pixels.npy").exists()
    with pytest.raises(SystemExit):
        main(["data", "generate", "lra-pathfinder", "--size", "48", "--out", str(tmp_path), "--n", "1"])
