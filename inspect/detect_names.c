/*
 * Names of the content detectors' categories, detectors and confidence
 * levels (bg_detect_category_id() and friends, see detect.h), and the
 * categories a policy defines beyond the built-in ones
 * (bg_detect_category_intern()).
 */
#include "inspect/detect_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const cat_ids[BG_CAT__COUNT] = {
    [BG_CAT_NONE] = NULL,
    [BG_CAT_CN_RESIDENT_ID] = "cn_resident_id",
    [BG_CAT_HMT_RESIDENCE_PERMIT] = "hmt_residence_permit",
    [BG_CAT_CN_MOBILE] = "cn_mobile",
    [BG_CAT_EMAIL] = "email",
    [BG_CAT_BANK_CARD] = "bank_card",
    [BG_CAT_IMEI] = "imei",
    [BG_CAT_IMSI] = "imsi",
    [BG_CAT_MAC_ADDRESS] = "mac_address",
    [BG_CAT_ANDROID_ID] = "android_id",
    [BG_CAT_DEVICE_ID] = "device_id",
    [BG_CAT_IP_ADDRESS] = "ip_address",
    [BG_CAT_GPS_LOCATION] = "gps_location",
    [BG_CAT_PASSPORT] = "passport",
    [BG_CAT_HK_ID] = "hk_id",
    [BG_CAT_TW_ID] = "tw_id",
    [BG_CAT_MO_ID] = "mo_id",
    [BG_CAT_MAINLAND_TRAVEL_PERMIT] = "mainland_travel_permit",
    [BG_CAT_PERSON_NAME] = "person_name",
    [BG_CAT_ADDRESS] = "address",
    [BG_CAT_PHONE_NUMBER] = "phone_number",
    [BG_CAT_IDENTITY_DOCUMENT] = "identity_document",
    [BG_CAT_BIRTH_DATE] = "birth_date",
    [BG_CAT_AGE] = "age",
    [BG_CAT_GENDER] = "gender",
    [BG_CAT_NATIONALITY] = "nationality",
    [BG_CAT_ETHNICITY] = "ethnicity",
    [BG_CAT_PRECISE_LOCATION] = "precise_location",
    [BG_CAT_WHEREABOUTS] = "whereabouts",
    [BG_CAT_BIOMETRICS] = "biometrics",
    [BG_CAT_HEALTH] = "health",
    [BG_CAT_RELIGION] = "religion",
    [BG_CAT_SPECIFIC_IDENTITY] = "specific_identity",
    [BG_CAT_SEXUAL_ORIENTATION] = "sexual_orientation",
    [BG_CAT_CRIMINAL_RECORD] = "criminal_record",
    [BG_CAT_MINOR_UNDER_14] = "minor_under_14",
    [BG_CAT_FINANCIAL_ACCOUNT] = "financial_account",
    [BG_CAT_TRANSACTION_RECORD] = "transaction_record",
    [BG_CAT_CREDENTIALS] = "credentials",
    [BG_CAT_ACCOUNT_ID] = "account_id",
    [BG_CAT_CONTACTS] = "contacts",
    [BG_CAT_COMMUNICATION_RECORD] = "communication_record",
    [BG_CAT_BROWSING_HISTORY] = "browsing_history",
    [BG_CAT_INSTALLED_APPS] = "installed_apps",
    [BG_CAT_VEHICLE_PLATE] = "vehicle_plate",
};

static const char *const det_names[BG_DET__COUNT] = {
    [BG_DET_RESIDENT_ID] = "gb11643",
    [BG_DET_CN_MOBILE] = "cn_mobile",
    [BG_DET_EMAIL] = "email",
    [BG_DET_BANK_CARD] = "luhn_bank_card",
    [BG_DET_IMEI] = "imei_luhn",
    [BG_DET_IMSI] = "imsi_460",
    [BG_DET_MAC] = "mac",
    [BG_DET_ANDROID_ID] = "android_id_by_key",
    [BG_DET_DEVICE_ID] = "device_id_by_key",
    [BG_DET_IPV4] = "ipv4",
    [BG_DET_IPV6] = "ipv6",
    [BG_DET_GPS_PAIR] = "gps_pair",
    [BG_DET_PASSPORT] = "passport",
    [BG_DET_HK_ID] = "hkid_mod11",
    [BG_DET_TW_ID] = "twid_mod10",
    [BG_DET_MO_ID] = "moid_format",
    [BG_DET_TRAVEL_PERMIT] = "travel_permit",
};

/* Policy-defined category ids (bg_detect_category_intern): written once
 * under the lock, then only read; a slot is published with a release store
 * after its bytes, so a reader that sees the pointer sees the id. */
static char *ext_ids[BG_CAT_MAX - BG_CAT__COUNT];
static pthread_mutex_t ext_lock = PTHREAD_MUTEX_INITIALIZER;

const char *bg_detect_category_id(bg_detect_cat_t cat)
{
    if ((int)cat <= BG_CAT_NONE || (int)cat >= BG_CAT_MAX)
        return NULL;
    if (cat >= BG_CAT__COUNT)
        return __atomic_load_n(&ext_ids[cat - BG_CAT__COUNT], __ATOMIC_ACQUIRE);
    return cat_ids[cat];
}

bg_detect_cat_t bg_detect_category_intern(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > 64 || !(id[0] >= 'a' && id[0] <= 'z') ||
        bg_detect_category_from_id(id, len) != BG_CAT_NONE)
        return BG_CAT_NONE;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '_'))
            return BG_CAT_NONE;
    bg_detect_cat_t out = BG_CAT_NONE;
    pthread_mutex_lock(&ext_lock);
    size_t k = 0;
    for (; k < BG_CAT_MAX - BG_CAT__COUNT && ext_ids[k] != NULL; k++) {
        if (strlen(ext_ids[k]) == len && memcmp(ext_ids[k], id, len) == 0) {
            out = (bg_detect_cat_t)(BG_CAT__COUNT + (int)k);
            goto done;
        }
    }
    if (k < BG_CAT_MAX - BG_CAT__COUNT) {
        char *copy = malloc(len + 1);
        if (copy != NULL) {
            memcpy(copy, id, len);
            copy[len] = '\0';
            __atomic_store_n(&ext_ids[k], copy, __ATOMIC_RELEASE);
            out = (bg_detect_cat_t)(BG_CAT__COUNT + (int)k);
        }
    }
done:
    pthread_mutex_unlock(&ext_lock);
    return out;
}

bg_detect_cat_t bg_detect_category_from_id(const char *id, size_t len)
{
    if (id == NULL)
        return BG_CAT_NONE;
    for (int c = BG_CAT_NONE + 1; c < BG_CAT__COUNT; c++)
        if (strlen(cat_ids[c]) == len && memcmp(cat_ids[c], id, len) == 0)
            return (bg_detect_cat_t)c;
    return BG_CAT_NONE;
}

const char *bg_detect_detector_name(bg_detect_id_t det)
{
    if ((int)det < 0 || det >= BG_DET__COUNT)
        return NULL;
    return det_names[det];
}

const char *bg_detect_confidence_name(bg_detect_conf_t conf)
{
    switch (conf) {
    case BG_CONF_LOW: return "low";
    case BG_CONF_MEDIUM: return "medium";
    case BG_CONF_HIGH: return "high";
    }
    return NULL;
}

int bg_detect_confidence_parse(const char *s, size_t len, bg_detect_conf_t *out)
{
    static const bg_detect_conf_t all[] = {BG_CONF_LOW, BG_CONF_MEDIUM, BG_CONF_HIGH};
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *n = bg_detect_confidence_name(all[i]);
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}
