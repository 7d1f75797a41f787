"""`review export --purpose training`'s picking step on an audit and photos in S3 (moto): the
scoring pass reads each photo through the stack's S3 client, a model.tar.gz in S3 is unpacked,
bins already in the project are never picked, and an unreadable photo is left out by name."""

from __future__ import annotations

import pytest

from devtools.random_model import model_archive
from orchestrate.audit.join import Row
from orchestrate.audit.report import write_csv
from orchestrate.core.aws import S3Clients
from orchestrate.review import teach

pytestmark = pytest.mark.slow  # moto


def test_picks_from_an_s3_audit_with_a_model_in_s3_and_skips_what_the_project_holds(aws, synthetic_bins,
                                                                                    random_model_dir, tmp_path,
                                                                                    capsys):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="stack")
    photos = sorted((synthetic_bins / "images").glob("*.jpg"))[:12]
    for p in photos:
        s3.upload_file(str(p), "stack", f"photos/{p.name}")
    s3.put_object(Bucket="stack", Key="photos/broken.jpg", Body=b"\xff\xd8 not a jpeg")
    rows = [Row(p.stem, 2, 3, 0.4, confidence=0.5, verdict="review") for p in photos]
    rows.append(Row("broken", 2, 3, 0.4, confidence=0.5, verdict="review"))
    write_csv(rows, tmp_path / "audit.csv", {r.bin_id: f"s3://stack/photos/{r.bin_id}.jpg" for r in rows})
    s3.upload_file(str(tmp_path / "audit.csv"), "stack", "audit/run1/audit.csv")
    s3.put_object(Bucket="stack", Key="models/model.tar.gz", Body=model_archive(random_model_dir))
    clients = S3Clients.of_session(aws, "aft-vbi-pds", "us-east-1")
    skip = {photos[0].stem, photos[1].stem}
    picked = teach.picked("s3://stack/audit/run1/", "typical", 5, 0, "s3://stack/models/model.tar.gz", skip, clients)
    assert len(picked) == 5 and not {r.bin_id for r in picked} & (skip | {"broken"})
    assert all(r.photo.startswith("s3://stack/photos/") for r in picked)
    assert "bin broken left out" in capsys.readouterr().out
    # the same seed picks the same bins
    again = teach.picked("s3://stack/audit/run1/", "typical", 5, 0, "s3://stack/models/model.tar.gz", skip, clients)
    assert [r.bin_id for r in again] == [r.bin_id for r in picked]
