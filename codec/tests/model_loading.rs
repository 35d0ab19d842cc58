//! Loading exported models: valid files load, every kind of damage gives a clear error.

mod common;

use common::{metadata, safetensors_file, small_config, zero_tensors, RawTensor, Rng};
use idfcodec_codec::{CodecError, Family, Idf, IdfConfig, Model};

fn config() -> IdfConfig {
    IdfConfig {
        levels: 1,
        couplings: 1,
        hidden: 3,
        mixtures: 1,
        ..small_config(1, 1)
    }
}

/// Expects an `InvalidModel` error whose message contains `needle`.
fn expect_invalid(bytes: &[u8], needle: &str) {
    match Idf::from_safetensors(bytes) {
        Err(CodecError::InvalidModel(msg)) => {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}")
        }
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("loaded a broken model (expected {needle:?})"),
    }
}

#[test]
fn a_valid_file_loads() {
    let c = config();
    let model = Idf::from_safetensors(&safetensors_file(&metadata(&c), &zero_tensors(&c))).unwrap();
    assert_eq!(model.config(), &c);
    assert_eq!(model.card()["note"], "test");
}

#[test]
fn missing_extra_and_misshapen_tensors_are_named() {
    let c = config();
    let meta = metadata(&c);
    let good = zero_tensors(&c);
    let target = "level0.prior.conv_out.bias";

    let missing: Vec<RawTensor> = good.iter().filter(|t| t.name != target).cloned().collect();
    expect_invalid(&safetensors_file(&meta, &missing), "tensors");

    // Same count, but one name replaced.
    let mut renamed = good.clone();
    renamed.iter_mut().find(|t| t.name == target).unwrap().name = "bogus".into();
    expect_invalid(&safetensors_file(&meta, &renamed), target);

    let mut extra = good.clone();
    extra.push(RawTensor::f32("bogus", vec![1], &[0.0]));
    expect_invalid(&safetensors_file(&meta, &extra), "tensors");

    let mut misshapen = good.clone();
    let t = misshapen.iter_mut().find(|t| t.name == target).unwrap();
    let n = t.shape[0];
    *t = RawTensor::f32(target, vec![n + 1], &vec![0.0; n + 1]);
    expect_invalid(&safetensors_file(&meta, &misshapen), target);

    let mut transposed = good.clone();
    let w = "level0.coupling0.conv_in.weight";
    let t = transposed.iter_mut().find(|t| t.name == w).unwrap();
    t.shape = vec![t.shape[1], t.shape[0], 3, 3];
    expect_invalid(&safetensors_file(&meta, &transposed), w);

    let mut wrong_dtype = good.clone();
    let t = wrong_dtype.iter_mut().find(|t| t.name == target).unwrap();
    t.dtype = safetensors::Dtype::I32;
    expect_invalid(&safetensors_file(&meta, &wrong_dtype), target);
}

#[test]
fn bad_metadata_is_rejected() {
    let c = config();
    let tensors = zero_tensors(&c);
    let arch = serde_json::to_string(&c).unwrap();
    let card = r#"{"a":1}"#.to_string();
    expect_invalid(
        &safetensors_file(&[("idfcodec.card", card.clone())], &tensors),
        "idfcodec.arch",
    );
    expect_invalid(
        &safetensors_file(&[("idfcodec.arch", arch.clone())], &tensors),
        "idfcodec.card",
    );
    expect_invalid(
        &safetensors_file(
            &[
                ("idfcodec.arch", "{not json".into()),
                ("idfcodec.card", card.clone()),
            ],
            &tensors,
        ),
        "idfcodec.arch",
    );
    expect_invalid(
        &safetensors_file(
            &[
                ("idfcodec.arch", arch.clone()),
                ("idfcodec.card", "[1,2]".into()),
            ],
            &tensors,
        ),
        "idfcodec.card",
    );
    let unknown_field = arch.replacen('{', r#"{"bogus":1,"#, 1);
    expect_invalid(
        &safetensors_file(
            &[
                ("idfcodec.arch", unknown_field),
                ("idfcodec.card", card.clone()),
            ],
            &tensors,
        ),
        "idfcodec.arch",
    );
    let invalid_config = IdfConfig {
        mixtures: 0,
        ..c.clone()
    };
    let arch0 = serde_json::to_string(&invalid_config).unwrap();
    expect_invalid(
        &safetensors_file(
            &[("idfcodec.arch", arch0), ("idfcodec.card", card.clone())],
            &tensors,
        ),
        "mixtures",
    );
    // A config that would need far more parameters than the file could hold is refused before
    // anything is allocated.
    let huge = IdfConfig {
        levels: 6,
        couplings: 32,
        hidden: 1024,
        blocks: 32,
        ..c.clone()
    };
    let arch_huge = serde_json::to_string(&huge).unwrap();
    expect_invalid(
        &safetensors_file(
            &[("idfcodec.arch", arch_huge), ("idfcodec.card", card)],
            &tensors,
        ),
        "parameters",
    );
}

#[test]
fn non_safetensors_bytes_are_rejected() {
    let c = config();
    let good = safetensors_file(&metadata(&c), &zero_tensors(&c));
    expect_invalid(&[], "safetensors");
    expect_invalid(&good[..good.len() - 1], "safetensors");
    expect_invalid(&good[..good.len() / 2], "safetensors");
    let mut rng = Rng::new(4);
    for _ in 0..50 {
        let n = rng.range(0, 300) as usize;
        assert!(Idf::from_safetensors(&rng.bytes(n)).is_err());
    }
    // Random damage to a valid file: any outcome but a panic; a load that succeeds must be a
    // complete model.
    for _ in 0..200 {
        let mut bytes = good.clone();
        let i = rng.range(0, bytes.len() as i64 - 1) as usize;
        bytes[i] = rng.next_u64() as u8;
        if let Ok(m) = Idf::from_safetensors(&bytes) {
            assert_eq!(m.config().tensor_specs().len(), c.tensor_specs().len());
        }
    }
}

#[test]
fn saving_requires_an_object_card() {
    let model = Idf::new_random(config(), 1).unwrap();
    assert!(model.to_safetensors(&serde_json::json!([1])).is_err());
    let bytes = model
        .to_safetensors(&serde_json::json!({"test_bpd": 1.5}))
        .unwrap();
    assert_eq!(
        Idf::from_safetensors(&bytes).unwrap().card()["test_bpd"],
        1.5
    );
}

/// Files written before models were tagged with their family have no `idfcodec.family`: they
/// are IDF files, and load as such (same id as the tagged file of the same weights).
#[test]
fn untagged_files_are_idf_files_and_tagged_ones_name_their_family() {
    let c = small_config(1, 2);
    let untagged = safetensors_file(&metadata(&c), &zero_tensors(&c));
    let old = Model::from_safetensors(&untagged).unwrap();
    assert_eq!(old.family(), Family::Idf);
    assert_eq!(old.idf().unwrap().config(), &c);

    let bytes = old.to_safetensors(old.card()).unwrap();
    let tag = safetensors::SafeTensors::read_metadata(&bytes).unwrap().1;
    let tag = tag.metadata().as_ref().unwrap()["idfcodec.family"].clone();
    assert_eq!(tag, "idf");
    let new = Model::from_safetensors(&bytes).unwrap();
    assert_eq!((new.family(), new.id()), (Family::Idf, old.id()));
    assert_eq!(new, old);
}

#[test]
fn unknown_families_are_refused_by_name() {
    let c = small_config(1, 2);
    let mut meta = metadata(&c);
    meta.push(("idfcodec.family", "glow".to_string()));
    let bytes = safetensors_file(&meta, &zero_tensors(&c));
    match Model::from_safetensors(&bytes) {
        Err(CodecError::InvalidModel(msg)) => {
            assert!(msg.contains("\"glow\"") && msg.contains("idf"), "{msg}")
        }
        other => panic!("expected an unknown-family error, got {other:?}"),
    }
    assert!(Idf::from_safetensors(&bytes).is_err());
    assert_eq!(Family::from_tag("idf"), Some(Family::Idf));
    assert_eq!(Family::from_tag("glow"), None);
}
