"""Checks shared by the recipe tests."""

import pytest


def assert_unusable_output_dir_stops_first(main, data_args, tmp_path, capsys):
    """`main` exits 2 naming an `--output-dir` that is a file, unread data.

    Args:
        main: the recipe's `main(argv)`.
        data_args: arguments naming missing data (with "missing" in the
            path): the error must be the output directory's, found first.
        tmp_path: a scratch directory.
        capsys: pytest's fixture, for the error message.
    """
    a_file = tmp_path / "taken"
    a_file.write_text("a file, not a directory")
    with pytest.raises(SystemExit) as exit_info:
        main([*data_args, "--output-dir", str(a_file)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"error: --output-dir {a_file}: it exists and is not a" in error
    assert "missing" not in error  # the data were not looked at
