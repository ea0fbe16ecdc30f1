//! The vault's behaviour: the primitive against Wycheproof, then every case on SQLite and on
//! PostgreSQL.

mod cases;
mod wycheproof;

arbe_store::both_backends!(cases =>
    set_resolve_rotate_and_roll_back,
    bad_value_names_the_secret_and_changes_nothing,
    roles_decide_who_may_set_and_delete,
    flipped_bits_in_stored_ciphertext_or_nonce_are_rejected,
    renamed_secret_fails_its_associated_data,
    ciphertext_swapped_between_rows_is_rejected,
    ciphertext_swapped_between_houses_is_rejected,
    wrapped_house_key_tampering_is_rejected,
    canary_is_absent_from_raw_database_bytes,
    canary_is_absent_from_trace_logs,
    master_key_rotation_survives_a_mixed_state_and_finishes,
    house_key_rotation_reseals_every_version,
    concurrent_sets_each_get_their_own_version,
    sets_racing_house_key_rotations_all_stay_readable,
    environment_values_too_short_to_redact_are_refused,
);
