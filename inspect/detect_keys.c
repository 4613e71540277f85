/*
 * Key names: what a JSON key, form field or header name says about its
 * value (bg_detect_key_info(), bg_detect_key_category(); see detect.h).
 * The term table (ASCII terms matched as the whole key, its last words or
 * any suffix; Chinese terms anywhere) is hashed right to left into an
 * open-addressing table on first use, so every suffix of a key is looked
 * up in one pass.
 */
#include "inspect/detect_int.h"

#include <pthread.h>
#include <string.h>

/* How a term may match a normalized key (see bg_detect_key_info()). */
#define K_EXACT 1 /* the whole key */
#define K_WORD 2  /* the key's last word(s), starting at a word boundary */
#define K_PART 4  /* any suffix of the key, even inside an undelimited word */
#define K_CJK 8   /* anywhere (a Chinese term; may contain ASCII letters) */

typedef struct {
    const char *term; /* lowercase ASCII without separators, or UTF-8 */
    uint8_t match;    /* K_* */
    uint8_t cat;      /* bg_detect_cat_t; NONE for hint-only terms */
    uint8_t conf;     /* bg_detect_conf_t */
    uint32_t hints;   /* BG_HINT_* beyond the ones the category implies */
} key_entry_t;

/* clang-format off */
#define H_ BG_CONF_HIGH
#define M_ BG_CONF_MEDIUM
#define L_ BG_CONF_LOW
#define W(t, c, f) {t, K_WORD, BG_CAT_##c, f, 0}
#define WH(t, c, f, h) {t, K_WORD, BG_CAT_##c, f, h}
#define P(t, c, f) {t, K_PART, BG_CAT_##c, f, 0}
#define X(t, c, f) {t, K_EXACT, BG_CAT_##c, f, 0}
#define XH(t, c, f, h) {t, K_EXACT, BG_CAT_##c, f, h}
#define C(t, c, f) {t, K_CJK, BG_CAT_##c, f, 0}
#define CH(t, c, f, h) {t, K_CJK, BG_CAT_##c, f, h}
#define NONPI(t) {t, K_WORD, BG_CAT_NONE, 0, BG_HINT_NONPI}
#define CNONPI(t) {t, K_CJK, BG_CAT_NONE, 0, BG_HINT_NONPI}
#define NOTPI(t) {t, K_WORD, BG_CAT_NONE, 0, 0}  /* shadows a shorter term */
#define CNOTPI(t) {t, K_CJK, BG_CAT_NONE, 0, 0}

/* Keep in step with docs/categories.md ("Key names"). A table, one term a
 * line: its length is data, not a function (issue 18's 150-line bar). */
static const key_entry_t key_table[] = {
    /* identity documents */
    W("idcard", CN_RESIDENT_ID, H_), W("idcardno", CN_RESIDENT_ID, H_),
    W("idcardnum", CN_RESIDENT_ID, H_), W("idcardnumber", CN_RESIDENT_ID, H_),
    W("idno", CN_RESIDENT_ID, M_), W("idnumber", CN_RESIDENT_ID, M_),
    W("identitycard", CN_RESIDENT_ID, H_), W("identitycardno", CN_RESIDENT_ID, H_),
    W("identityno", CN_RESIDENT_ID, H_), W("identitynumber", CN_RESIDENT_ID, H_),
    W("citizenid", CN_RESIDENT_ID, H_), W("nationalid", CN_RESIDENT_ID, H_),
    W("nationalidnumber", CN_RESIDENT_ID, H_), W("residentid", CN_RESIDENT_ID, H_),
    W("residentidcard", CN_RESIDENT_ID, H_), W("sfz", CN_RESIDENT_ID, H_),
    W("sfzh", CN_RESIDENT_ID, H_), W("sfzhm", CN_RESIDENT_ID, H_),
    W("sfzno", CN_RESIDENT_ID, H_), W("shenfenzheng", CN_RESIDENT_ID, H_),
    W("certno", IDENTITY_DOCUMENT, M_), W("certnum", IDENTITY_DOCUMENT, M_),
    W("certnumber", IDENTITY_DOCUMENT, M_), W("certificateno", IDENTITY_DOCUMENT, M_),
    W("certificatenumber", IDENTITY_DOCUMENT, M_), W("zjhm", IDENTITY_DOCUMENT, H_),
    W("driverlicense", IDENTITY_DOCUMENT, H_), W("driverslicense", IDENTITY_DOCUMENT, H_),
    W("driverlicenseno", IDENTITY_DOCUMENT, H_), W("socialsecurityno", IDENTITY_DOCUMENT, H_),
    W("socialsecuritynumber", IDENTITY_DOCUMENT, H_), W("ssn", IDENTITY_DOCUMENT, H_),
    P("passport", PASSPORT, H_), P("passportno", PASSPORT, H_), P("passportnum", PASSPORT, H_),
    P("passportnumber", PASSPORT, H_), W("passportid", PASSPORT, H_),
    W("hkid", HK_ID, H_), W("hkidcard", HK_ID, H_), W("hkidno", HK_ID, H_),
    W("hongkongid", HK_ID, H_), W("hongkongidcard", HK_ID, H_), W("twid", TW_ID, H_),
    W("twidcard", TW_ID, H_), W("taiwanid", TW_ID, H_), W("taiwanidcard", TW_ID, H_),
    W("macaoid", MO_ID, H_), W("macauid", MO_ID, H_), W("macaoidcard", MO_ID, H_),
    W("macauidcard", MO_ID, H_), W("homereturnpermit", MAINLAND_TRAVEL_PERMIT, H_),
    W("mtp", MAINLAND_TRAVEL_PERMIT, M_), W("mtpno", MAINLAND_TRAVEL_PERMIT, H_),
    W("travelpermit", MAINLAND_TRAVEL_PERMIT, M_), W("taiwanpermit", MAINLAND_TRAVEL_PERMIT, H_),
    W("tbz", MAINLAND_TRAVEL_PERMIT, H_), W("taibaozheng", MAINLAND_TRAVEL_PERMIT, H_),
    W("hxz", MAINLAND_TRAVEL_PERMIT, H_), W("huixiangzheng", MAINLAND_TRAVEL_PERMIT, H_),
    W("hmtresidencepermit", HMT_RESIDENCE_PERMIT, H_),
    /* phone numbers ("phone" is a word only: iphone, headphone, microphone) */
    W("phone", PHONE_NUMBER, H_), W("mobile", PHONE_NUMBER, M_), W("tel", PHONE_NUMBER, H_),
    P("telephone", PHONE_NUMBER, H_), W("telno", PHONE_NUMBER, H_), W("telnum", PHONE_NUMBER, H_),
    P("phoneno", PHONE_NUMBER, H_), P("phonenum", PHONE_NUMBER, H_),
    P("phonenumber", PHONE_NUMBER, H_), P("mobileno", PHONE_NUMBER, H_),
    P("mobilenum", PHONE_NUMBER, H_), P("mobilenumber", PHONE_NUMBER, H_),
    P("mobilephone", PHONE_NUMBER, H_), P("cellphone", PHONE_NUMBER, H_),
    P("contactphone", PHONE_NUMBER, H_), P("userphone", PHONE_NUMBER, H_),
    W("cell", PHONE_NUMBER, L_), W("msisdn", PHONE_NUMBER, H_), W("shouji", PHONE_NUMBER, H_),
    W("shoujihao", PHONE_NUMBER, H_), W("sjh", PHONE_NUMBER, H_), W("dianhua", PHONE_NUMBER, H_),
    W("lxdh", PHONE_NUMBER, H_), WH("contact", PHONE_NUMBER, L_, BG_HINT_EMAIL),
    /* e-mail */
    P("email", EMAIL, H_), W("mail", EMAIL, M_), P("emailaddress", EMAIL, H_),
    W("emailaddr", EMAIL, H_), W("mailaddress", EMAIL, M_), W("mailbox", EMAIL, M_),
    W("youxiang", EMAIL, H_),
    /* cards and accounts */
    P("bankcard", BANK_CARD, H_), P("bankcardno", BANK_CARD, H_),
    P("bankcardnumber", BANK_CARD, H_), P("creditcard", BANK_CARD, H_),
    P("creditcardno", BANK_CARD, H_), P("creditcardnumber", BANK_CARD, H_),
    P("debitcard", BANK_CARD, H_), W("yhkh", BANK_CARD, H_),
    WH("cardno", NONE, 0, BG_HINT_CARD), WH("cardnum", NONE, 0, BG_HINT_CARD),
    WH("cardnumber", NONE, 0, BG_HINT_CARD), WH("pan", NONE, 0, BG_HINT_CARD),
    /* "card" alone (a payment form's card field): the whole key only, so
     * sim_card, gift_card and vip_card numbers keep the strict checks */
    XH("card", NONE, 0, BG_HINT_CARD),
    WH("bankaccount", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("bankaccountno", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("bankaccountnumber", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("iban", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD), W("alipay", FINANCIAL_ACCOUNT, M_),
    W("alipayaccount", FINANCIAL_ACCOUNT, H_), W("alipayid", FINANCIAL_ACCOUNT, H_),
    W("paypal", FINANCIAL_ACCOUNT, M_), W("paypalaccount", FINANCIAL_ACCOUNT, H_),
    W("payaccount", FINANCIAL_ACCOUNT, H_), W("paymentaccount", FINANCIAL_ACCOUNT, H_),
    W("wechatpayaccount", FINANCIAL_ACCOUNT, H_), W("walletaddress", FINANCIAL_ACCOUNT, L_),
    /* credentials: never export */
    P("password", CREDENTIALS, H_), P("passwd", CREDENTIALS, H_), P("pwd", CREDENTIALS, H_),
    P("passcode", CREDENTIALS, H_), P("passphrase", CREDENTIALS, H_), W("pin", CREDENTIALS, M_),
    P("secret", CREDENTIALS, H_), P("token", CREDENTIALS, H_), P("apikey", CREDENTIALS, H_),
    P("accesskey", CREDENTIALS, H_), P("secretkey", CREDENTIALS, H_),
    P("privatekey", CREDENTIALS, H_), W("authorization", CREDENTIALS, H_),
    W("auth", CREDENTIALS, L_), W("cookie", CREDENTIALS, M_), 
    W("sessionkey", CREDENTIALS, H_), W("otp", CREDENTIALS, H_), P("smscode", CREDENTIALS, H_),
    P("verifycode", CREDENTIALS, H_), P("verificationcode", CREDENTIALS, H_),
    W("authcode", CREDENTIALS, H_), W("credential", CREDENTIALS, H_),
    W("credentials", CREDENTIALS, H_), W("cvv", CREDENTIALS, H_), W("cvv2", CREDENTIALS, H_),
    W("cvc", CREDENTIALS, H_), W("mima", CREDENTIALS, H_),
    NOTPI("pagetoken"), NOTPI("nexttoken"), NOTPI("nextpagetoken"), NOTPI("continuationtoken"),
    NOTPI("synctoken"), NOTPI("cursortoken"),
    /* tokens that are not secrets: a payment provider's token stands for a
     * card (pseudonymized, still personal: PIPL Art. 73); a push token
     * addresses a device. An analytics "session_id" groups one visit's
     * events; a login session is a cookie, which policy names by header. */
    W("cardtoken", FINANCIAL_ACCOUNT, M_), W("paymenttoken", FINANCIAL_ACCOUNT, M_),
    W("paymentmethodtoken", FINANCIAL_ACCOUNT, M_), W("devicetoken", DEVICE_ID, M_),
    W("pushtoken", DEVICE_ID, M_), W("sessionid", CREDENTIALS, L_),
    /* names ("name" alone: product, file, app names too) */
    X("name", PERSON_NAME, L_), W("realname", PERSON_NAME, H_), W("fullname", PERSON_NAME, H_),
    W("firstname", PERSON_NAME, H_), W("lastname", PERSON_NAME, H_),
    W("givenname", PERSON_NAME, H_), W("familyname", PERSON_NAME, H_),
    W("surname", PERSON_NAME, H_), W("middlename", PERSON_NAME, H_),
    W("personname", PERSON_NAME, H_), W("customername", PERSON_NAME, M_),
    W("contactname", PERSON_NAME, H_), W("receivername", PERSON_NAME, H_),
    W("recipientname", PERSON_NAME, H_), W("consigneename", PERSON_NAME, H_),
    W("consignee", PERSON_NAME, M_), W("cardholder", PERSON_NAME, H_),
    W("cardholdername", PERSON_NAME, H_), W("holdername", PERSON_NAME, M_),
    W("accountname", PERSON_NAME, M_), W("payername", PERSON_NAME, M_),
    W("payeename", PERSON_NAME, M_), W("truename", PERSON_NAME, H_),
    W("legalname", PERSON_NAME, H_), W("patientname", PERSON_NAME, H_),
    W("studentname", PERSON_NAME, H_), W("guardianname", PERSON_NAME, H_),
    W("employeename", PERSON_NAME, H_), W("membername", PERSON_NAME, M_),
    W("applicantname", PERSON_NAME, H_), W("passengername", PERSON_NAME, H_),
    W("guestname", PERSON_NAME, H_), W("drivername", PERSON_NAME, H_),
    W("displayname", PERSON_NAME, L_), W("xingming", PERSON_NAME, H_),
    /* addresses (and the other things called "address") */
    W("address", ADDRESS, M_), W("addr", ADDRESS, M_), W("street", ADDRESS, L_),
    W("homeaddress", ADDRESS, H_), W("streetaddress", ADDRESS, H_),
    W("shippingaddress", ADDRESS, H_), W("billingaddress", ADDRESS, H_),
    W("deliveryaddress", ADDRESS, H_), W("postaladdress", ADDRESS, H_),
    W("mailingaddress", ADDRESS, H_), W("residentialaddress", ADDRESS, H_),
    W("detailaddress", ADDRESS, H_), W("fulladdress", ADDRESS, H_),
    W("receiveraddress", ADDRESS, H_), W("addressline", ADDRESS, H_), W("zhuzhi", ADDRESS, H_),
    W("dizhi", ADDRESS, H_), W("ipaddress", IP_ADDRESS, H_), W("ipaddr", IP_ADDRESS, H_),
    W("remoteaddress", IP_ADDRESS, M_), W("remoteaddr", IP_ADDRESS, M_),
    W("clientaddress", IP_ADDRESS, M_), W("clientaddr", IP_ADDRESS, M_),
    W("macaddress", MAC_ADDRESS, H_), W("macaddr", MAC_ADDRESS, H_),
    W("bluetoothaddress", MAC_ADDRESS, H_), W("hardwareaddress", MAC_ADDRESS, H_),
    NOTPI("serveraddress"), NOTPI("hostaddress"), NOTPI("bindaddress"), NOTPI("listenaddress"),
    NOTPI("baseaddress"), NOTPI("memoryaddress"), NOTPI("contractaddress"),
    NOTPI("webaddress"), NOTPI("networkaddress"), NOTPI("proxyaddress"),
    NOTPI("localaddress"), NOTPI("socketaddress"), NOTPI("upstreamaddress"),
    /* personal details */
    W("birthday", BIRTH_DATE, H_), W("birthdate", BIRTH_DATE, H_),
    W("dateofbirth", BIRTH_DATE, H_), W("dob", BIRTH_DATE, H_), W("birth", BIRTH_DATE, M_),
    W("bday", BIRTH_DATE, H_), W("birthyear", BIRTH_DATE, M_), W("shengri", BIRTH_DATE, H_),
    W("csrq", BIRTH_DATE, H_), W("age", AGE, M_), W("nianling", AGE, H_),
    W("gender", GENDER, H_), W("sex", GENDER, H_), W("xingbie", GENDER, H_),
    W("nationality", NATIONALITY, H_), W("citizenship", NATIONALITY, H_),
    W("guoji", NATIONALITY, H_), W("ethnicity", ETHNICITY, H_), W("ethnic", ETHNICITY, M_),
    W("race", ETHNICITY, L_), W("minzu", ETHNICITY, H_),
    /* location */
    W("lat", GPS_LOCATION, H_), W("lng", GPS_LOCATION, H_), W("lon", GPS_LOCATION, H_),
    P("latitude", GPS_LOCATION, H_), P("longitude", GPS_LOCATION, H_),
    W("latlng", GPS_LOCATION, H_), W("lnglat", GPS_LOCATION, H_), W("latlon", GPS_LOCATION, H_),
    W("coordinate", GPS_LOCATION, M_), W("coordinates", GPS_LOCATION, M_),
    W("coords", GPS_LOCATION, M_), W("coord", GPS_LOCATION, L_), W("gps", GPS_LOCATION, H_),
    W("jingdu", GPS_LOCATION, H_), W("weidu", GPS_LOCATION, H_),
    W("location", PRECISE_LOCATION, L_), W("geo", PRECISE_LOCATION, L_),
    W("geolocation", PRECISE_LOCATION, H_), W("currentlocation", PRECISE_LOCATION, H_),
    W("gpslocation", PRECISE_LOCATION, H_), W("preciselocation", PRECISE_LOCATION, H_),
    W("trajectory", WHEREABOUTS, H_), W("trackpoints", WHEREABOUTS, H_),
    W("locationhistory", WHEREABOUTS, H_), W("travelhistory", WHEREABOUTS, M_),
    W("itinerary", WHEREABOUTS, M_),
    /* sensitive categories of PIPL Art. 28 */
    W("faceimage", BIOMETRICS, H_), W("facephoto", BIOMETRICS, H_), W("facedata", BIOMETRICS, H_),
    W("facefeature", BIOMETRICS, H_), W("facefeatures", BIOMETRICS, H_),
    W("faceembedding", BIOMETRICS, H_), W("facetemplate", BIOMETRICS, H_),
    W("facevector", BIOMETRICS, H_), W("faceid", BIOMETRICS, L_),
    W("fingerprintimage", BIOMETRICS, H_), W("fingerprinttemplate", BIOMETRICS, H_),
    W("fingerprintdata", BIOMETRICS, H_), W("voiceprint", BIOMETRICS, H_),
    W("iris", BIOMETRICS, M_), W("irisscan", BIOMETRICS, H_), W("palmprint", BIOMETRICS, H_),
    W("biometric", BIOMETRICS, H_), W("biometrics", BIOMETRICS, H_),
    W("biometricdata", BIOMETRICS, H_), W("dna", BIOMETRICS, M_), W("genome", BIOMETRICS, M_),
    W("fingerprint", DEVICE_ID, L_), /* browser/device/TLS fingerprints, mostly */
    W("diagnosis", HEALTH, H_), W("diagnoses", HEALTH, H_), W("medicalrecord", HEALTH, H_),
    W("medicalrecords", HEALTH, H_), W("medicalhistory", HEALTH, H_), W("disease", HEALTH, M_),
    W("illness", HEALTH, H_), W("symptom", HEALTH, M_), W("symptoms", HEALTH, M_),
    W("prescription", HEALTH, H_), W("allergy", HEALTH, H_), W("allergies", HEALTH, H_),
    W("bloodtype", HEALTH, H_), W("bloodpressure", HEALTH, H_), W("heartrate", HEALTH, M_),
    W("medication", HEALTH, H_), W("medications", HEALTH, H_), W("healthcode", HEALTH, M_),
    W("healthstatus", HEALTH, M_), W("pregnancy", HEALTH, H_),
    W("religion", RELIGION, H_), W("religious", RELIGION, H_), W("faith", RELIGION, L_),
    W("zongjiao", RELIGION, H_), W("disability", SPECIFIC_IDENTITY, H_),
    W("sexualorientation", SEXUAL_ORIENTATION, H_), W("criminalrecord", CRIMINAL_RECORD, H_),
    W("criminalrecords", CRIMINAL_RECORD, H_), W("convictions", CRIMINAL_RECORD, M_),
    /* records and lists */
    W("transactionhistory", TRANSACTION_RECORD, H_), W("transactions", TRANSACTION_RECORD, M_),
    W("orderhistory", TRANSACTION_RECORD, M_), W("purchasehistory", TRANSACTION_RECORD, H_),
    W("paymenthistory", TRANSACTION_RECORD, H_), W("contacts", CONTACTS, H_),
    W("addressbook", CONTACTS, H_), W("contactlist", CONTACTS, H_),
    W("friendlist", CONTACTS, H_), W("phonebook", CONTACTS, H_),
    W("calllog", COMMUNICATION_RECORD, H_), W("calllogs", COMMUNICATION_RECORD, H_),
    W("callrecords", COMMUNICATION_RECORD, H_), W("callhistory", COMMUNICATION_RECORD, H_),
    W("smscontent", COMMUNICATION_RECORD, H_), W("smsbody", COMMUNICATION_RECORD, H_),
    W("chathistory", COMMUNICATION_RECORD, H_), W("chatlog", COMMUNICATION_RECORD, H_),
    W("chatrecords", COMMUNICATION_RECORD, H_), W("browsinghistory", BROWSING_HISTORY, H_),
    W("browsehistory", BROWSING_HISTORY, H_), W("searchhistory", BROWSING_HISTORY, H_),
    W("installedapps", INSTALLED_APPS, H_), W("applist", INSTALLED_APPS, H_),
    W("installedpackages", INSTALLED_APPS, H_), W("packagelist", INSTALLED_APPS, M_),
    W("installedapplist", INSTALLED_APPS, H_), W("appinstalllist", INSTALLED_APPS, H_),
    W("licenseplate", VEHICLE_PLATE, H_), W("plateno", VEHICLE_PLATE, H_),
    W("platenumber", VEHICLE_PLATE, H_), W("carplate", VEHICLE_PLATE, H_),
    W("vehicleplate", VEHICLE_PLATE, H_), W("carno", VEHICLE_PLATE, M_),
    W("chepai", VEHICLE_PLATE, H_),
    /* accounts */
    W("userid", ACCOUNT_ID, M_), W("uid", ACCOUNT_ID, M_), W("username", ACCOUNT_ID, M_),
    W("nickname", ACCOUNT_ID, M_), W("loginname", ACCOUNT_ID, M_), W("loginid", ACCOUNT_ID, M_),
    W("account", ACCOUNT_ID, L_), W("accountid", ACCOUNT_ID, M_), W("openid", ACCOUNT_ID, H_),
    W("unionid", ACCOUNT_ID, H_), W("wechatid", ACCOUNT_ID, H_), W("wxid", ACCOUNT_ID, H_),
    W("wechat", ACCOUNT_ID, M_), W("weixin", ACCOUNT_ID, M_), W("qq", ACCOUNT_ID, M_),
    W("qqnumber", ACCOUNT_ID, H_), W("weiboid", ACCOUNT_ID, M_), W("memberid", ACCOUNT_ID, M_),
    W("customerid", ACCOUNT_ID, M_), W("userno", ACCOUNT_ID, M_),
    /* devices */
    P("imei", IMEI, H_), W("meid", IMEI, H_), W("imeisv", IMEI, H_), P("imsi", IMSI, H_),
    W("iccid", DEVICE_ID, H_), W("mac", MAC_ADDRESS, H_), W("wifimac", MAC_ADDRESS, H_),
    W("bssid", MAC_ADDRESS, H_), W("bluetoothmac", MAC_ADDRESS, H_), W("btmac", MAC_ADDRESS, H_),
    P("androidid", ANDROID_ID, H_), W("ssaid", ANDROID_ID, H_), P("deviceid", DEVICE_ID, H_),
    W("udid", DEVICE_ID, H_), W("idfa", DEVICE_ID, H_), W("idfv", DEVICE_ID, H_),
    W("oaid", DEVICE_ID, H_), W("aaid", DEVICE_ID, H_), W("gaid", DEVICE_ID, H_),
    W("adid", DEVICE_ID, L_), W("advertisingid", DEVICE_ID, H_), W("openudid", DEVICE_ID, H_),
    W("deviceno", DEVICE_ID, H_), W("devicesn", DEVICE_ID, H_), W("deviceuuid", DEVICE_ID, H_),
    W("deviceguid", DEVICE_ID, H_), W("devicetoken", DEVICE_ID, H_),
    W("pushtoken", DEVICE_ID, H_), W("hardwareid", DEVICE_ID, H_), W("hwid", DEVICE_ID, H_),
    W("machineid", DEVICE_ID, M_), W("installationid", DEVICE_ID, M_),
    W("utdid", DEVICE_ID, H_), W("serialnumber", DEVICE_ID, L_), W("device", DEVICE_ID, L_),
    /* IP addresses ("ip" is a word only: zip, ship, tip) */
    W("ip", IP_ADDRESS, H_), W("ipv4", IP_ADDRESS, H_), W("ipv6", IP_ADDRESS, H_),
    P("clientip", IP_ADDRESS, H_), P("remoteip", IP_ADDRESS, H_), P("userip", IP_ADDRESS, H_),
    P("loginip", IP_ADDRESS, H_), P("sourceip", IP_ADDRESS, H_), W("srcip", IP_ADDRESS, H_),
    P("realip", IP_ADDRESS, H_), P("forwardedfor", IP_ADDRESS, H_),
    W("registerip", IP_ADDRESS, H_),
    /* not PI: identifiers of things, versions, times, amounts */
    NONPI("orderid"), NONPI("orderno"), NONPI("ordernumber"), NONPI("ordersn"),
    NONPI("tradeno"), NONPI("outtradeno"), NONPI("transactionid"), NONPI("transid"),
    NONPI("txid"), NONPI("txnid"), NONPI("traceid"), NONPI("spanid"), NONPI("requestid"),
    NONPI("reqid"), NONPI("correlationid"), NONPI("messageid"), NONPI("msgid"),
    NONPI("eventid"), NONPI("batchid"), NONPI("version"), NONPI("ver"), NONPI("appversion"),
    NONPI("osversion"), NONPI("sdkversion"), NONPI("apiversion"), NONPI("build"),
    NONPI("buildno"), NONPI("buildnumber"), NONPI("timestamp"), NONPI("ts"), NONPI("time"),
    NONPI("createtime"), NONPI("updatetime"), NONPI("createdat"), NONPI("updatedat"),
    NONPI("price"), NONPI("amount"), NONPI("total"), NONPI("totalamount"), NONPI("count"),
    NONPI("qty"), NONPI("quantity"), NONPI("sku"), NONPI("skuid"), NONPI("productid"),
    NONPI("itemid"), NONPI("goodsid"), NONPI("trackingno"), NONPI("trackingnumber"),
    NONPI("waybill"), NONPI("waybillno"), NONPI("expressno"), NONPI("logisticsno"),
    NONPI("invoiceno"), NONPI("seq"), NONPI("sequence"), NONPI("nonce"), NONPI("signature"),
    NONPI("sign"), NONPI("hash"), NONPI("checksum"), NONPI("md5"), NONPI("sha1"),
    NONPI("sha256"), NONPI("etag"), NONPI("maxage"), NONPI("duration"), NONPI("size"),
    NONPI("offset"), NONPI("limit"), NONPI("page"), NONPI("pagesize"), NONPI("errcode"),
    NONPI("errorcode"), NONPI("statuscode"),

    /* Chinese terms (anywhere; the one ending last wins, then the longest) */
    C("姓名", PERSON_NAME, H_), C("真实姓名", PERSON_NAME, H_), C("名字", PERSON_NAME, M_),
    C("收件人", PERSON_NAME, M_), C("收货人", PERSON_NAME, M_), C("联系人", PERSON_NAME, M_),
    C("持卡人", PERSON_NAME, H_), C("户名", PERSON_NAME, M_), C("昵称", ACCOUNT_ID, M_),
    C("用户名", ACCOUNT_ID, M_), C("账号", ACCOUNT_ID, M_), C("用户id", ACCOUNT_ID, M_),
    C("会员号", ACCOUNT_ID, M_), C("微信号", ACCOUNT_ID, H_), C("qq号", ACCOUNT_ID, H_),
    C("身份证", CN_RESIDENT_ID, H_), C("身份证号", CN_RESIDENT_ID, H_),
    C("身份证号码", CN_RESIDENT_ID, H_), C("居民身份证", CN_RESIDENT_ID, H_),
    C("公民身份号码", CN_RESIDENT_ID, H_), C("身份号码", CN_RESIDENT_ID, H_),
    C("证件号", IDENTITY_DOCUMENT, H_), C("证件号码", IDENTITY_DOCUMENT, H_),
    C("证件", IDENTITY_DOCUMENT, M_), C("护照", PASSPORT, H_), C("护照号", PASSPORT, H_),
    C("护照号码", PASSPORT, H_), C("香港身份证", HK_ID, H_), C("澳门身份证", MO_ID, H_),
    C("台湾身份证", TW_ID, H_), C("回乡证", MAINLAND_TRAVEL_PERMIT, H_),
    C("港澳居民来往内地通行证", MAINLAND_TRAVEL_PERMIT, H_),
    C("台湾居民来往大陆通行证", MAINLAND_TRAVEL_PERMIT, H_),
    C("台胞证", MAINLAND_TRAVEL_PERMIT, H_), CH("通行证", IDENTITY_DOCUMENT, M_, BG_HINT_PERMIT),
    C("港澳台居民居住证", HMT_RESIDENCE_PERMIT, H_), C("居住证", IDENTITY_DOCUMENT, M_),
    C("驾驶证", IDENTITY_DOCUMENT, H_), C("驾照", IDENTITY_DOCUMENT, H_),
    C("社保卡", IDENTITY_DOCUMENT, H_), C("社保卡号", IDENTITY_DOCUMENT, H_),
    C("军官证", IDENTITY_DOCUMENT, H_), C("手机", PHONE_NUMBER, H_), C("手机号", PHONE_NUMBER, H_),
    C("手机号码", PHONE_NUMBER, H_), C("电话", PHONE_NUMBER, H_), C("电话号码", PHONE_NUMBER, H_),
    C("联系电话", PHONE_NUMBER, H_), CH("联系方式", PHONE_NUMBER, M_, BG_HINT_EMAIL),
    C("座机", PHONE_NUMBER, H_), C("移动电话", PHONE_NUMBER, H_), C("固话", PHONE_NUMBER, H_),
    C("邮箱", EMAIL, H_), C("电子邮箱", EMAIL, H_), C("电子邮件", EMAIL, H_),
    C("邮件地址", EMAIL, H_), C("邮箱地址", EMAIL, H_), C("地址", ADDRESS, H_),
    C("住址", ADDRESS, H_), C("家庭住址", ADDRESS, H_), C("详细地址", ADDRESS, H_),
    C("收货地址", ADDRESS, H_), C("户籍地址", ADDRESS, H_), C("通讯地址", ADDRESS, H_),
    C("居住地址", ADDRESS, H_), C("现住址", ADDRESS, H_), C("居住地", ADDRESS, M_),
    C("门牌号", ADDRESS, H_), C("ip地址", IP_ADDRESS, H_), C("mac地址", MAC_ADDRESS, H_),
    C("银行卡", BANK_CARD, H_), C("银行卡号", BANK_CARD, H_),
    CH("卡号", NONE, 0, BG_HINT_CARD), CH("银行账号", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    CH("银行账户", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD), C("信用卡", BANK_CARD, H_),
    C("信用卡号", BANK_CARD, H_), C("储蓄卡", BANK_CARD, H_), C("借记卡", BANK_CARD, H_),
    C("支付宝", FINANCIAL_ACCOUNT, M_), C("支付宝账号", FINANCIAL_ACCOUNT, H_),
    C("微信支付", FINANCIAL_ACCOUNT, M_), C("收款账号", FINANCIAL_ACCOUNT, H_),
    C("出生日期", BIRTH_DATE, H_), C("生日", BIRTH_DATE, H_), C("出生年月", BIRTH_DATE, H_),
    C("出生年月日", BIRTH_DATE, H_), C("年龄", AGE, H_), C("性别", GENDER, H_),
    C("国籍", NATIONALITY, H_), C("民族", ETHNICITY, H_), C("经度", GPS_LOCATION, H_),
    C("纬度", GPS_LOCATION, H_), C("经纬度", GPS_LOCATION, H_), C("坐标", GPS_LOCATION, M_),
    C("定位", PRECISE_LOCATION, M_), C("位置", PRECISE_LOCATION, L_),
    C("地理位置", PRECISE_LOCATION, H_), C("当前位置", PRECISE_LOCATION, H_),
    C("精确位置", PRECISE_LOCATION, H_), C("精准定位", PRECISE_LOCATION, H_),
    C("行踪", WHEREABOUTS, H_), C("轨迹", WHEREABOUTS, H_), C("行踪轨迹", WHEREABOUTS, H_),
    C("行程", WHEREABOUTS, M_), C("出行记录", WHEREABOUTS, H_), C("住宿记录", WHEREABOUTS, H_),
    C("人脸", BIOMETRICS, H_), C("人脸图像", BIOMETRICS, H_), C("人脸照片", BIOMETRICS, H_),
    C("人脸特征", BIOMETRICS, H_), C("面部特征", BIOMETRICS, H_), C("面部识别", BIOMETRICS, H_),
    C("指纹", BIOMETRICS, H_), C("声纹", BIOMETRICS, H_), C("虹膜", BIOMETRICS, H_),
    C("掌纹", BIOMETRICS, H_), C("生物特征", BIOMETRICS, H_), C("生物识别", BIOMETRICS, H_),
    C("基因", BIOMETRICS, M_), C("病历", HEALTH, H_), C("诊断", HEALTH, H_), C("病史", HEALTH, H_),
    C("病症", HEALTH, H_), C("疾病", HEALTH, H_), C("过敏", HEALTH, M_), C("用药", HEALTH, H_),
    C("健康", HEALTH, M_), C("体检", HEALTH, H_), C("健康码", HEALTH, M_), C("血型", HEALTH, H_),
    C("症状", HEALTH, H_), C("处方", HEALTH, H_), C("医疗", HEALTH, M_), C("就诊", HEALTH, H_),
    C("残疾", SPECIFIC_IDENTITY, H_), C("残疾人证", SPECIFIC_IDENTITY, H_),
    C("宗教", RELIGION, H_), C("宗教信仰", RELIGION, H_), C("信仰", RELIGION, M_),
    C("性取向", SEXUAL_ORIENTATION, H_), C("犯罪记录", CRIMINAL_RECORD, H_),
    C("违法犯罪记录", CRIMINAL_RECORD, H_), C("前科", CRIMINAL_RECORD, H_),
    C("交易记录", TRANSACTION_RECORD, H_), C("消费记录", TRANSACTION_RECORD, H_),
    C("流水", TRANSACTION_RECORD, M_), C("账单", TRANSACTION_RECORD, M_),
    C("密码", CREDENTIALS, H_), C("口令", CREDENTIALS, H_), C("支付密码", CREDENTIALS, H_),
    C("验证码", CREDENTIALS, H_), C("令牌", CREDENTIALS, H_), C("密钥", CREDENTIALS, H_),
    C("私钥", CREDENTIALS, H_), C("通讯录", CONTACTS, H_), C("联系人列表", CONTACTS, H_),
    C("好友列表", CONTACTS, H_), C("通话记录", COMMUNICATION_RECORD, H_),
    C("短信", COMMUNICATION_RECORD, M_), C("短信内容", COMMUNICATION_RECORD, H_),
    C("聊天记录", COMMUNICATION_RECORD, H_), C("通信记录", COMMUNICATION_RECORD, H_),
    C("通信内容", COMMUNICATION_RECORD, H_), C("浏览记录", BROWSING_HISTORY, H_),
    C("搜索记录", BROWSING_HISTORY, H_), C("浏览历史", BROWSING_HISTORY, H_),
    C("应用列表", INSTALLED_APPS, H_), C("已安装应用", INSTALLED_APPS, H_),
    C("软件列表", INSTALLED_APPS, H_), C("安装列表", INSTALLED_APPS, H_),
    C("车牌", VEHICLE_PLATE, H_), C("车牌号", VEHICLE_PLATE, H_), C("车牌号码", VEHICLE_PLATE, H_),
    C("设备", DEVICE_ID, L_), C("设备id", DEVICE_ID, H_), C("设备号", DEVICE_ID, H_),
    C("设备标识", DEVICE_ID, H_), C("设备标识符", DEVICE_ID, H_), C("串号", IMEI, H_),
    C("安卓id", ANDROID_ID, H_),
    /* heads that make the compound about something else: 手机型号 is a
     * phone model, 身份证类型 a document type */
    CNOTPI("型号"), CNOTPI("类型"), CNOTPI("品牌"), CNOTPI("状态"), CNOTPI("格式"),
    CNOTPI("名称"), CNOTPI("数量"), CNOTPI("次数"),
    CNONPI("订单号"), CNONPI("订单编号"), CNONPI("运单号"), CNONPI("快递单号"),
    CNONPI("物流单号"), CNONPI("流水号"), CNONPI("交易号"), CNONPI("时间戳"), CNONPI("时间"),
    CNONPI("版本"), CNONPI("版本号"), CNONPI("价格"), CNONPI("金额"),
};
/* clang-format on */

#undef W
#undef WH
#undef P
#undef X
#undef XH
#undef C
#undef CH
#undef NONPI
#undef CNONPI
#undef NOTPI
#undef CNOTPI

/* Hints every key of a category gives the content detectors. */
static uint32_t cat_hints(unsigned cat)
{
    switch (cat) {
    case BG_CAT_CN_RESIDENT_ID:
    case BG_CAT_HMT_RESIDENCE_PERMIT: return BG_HINT_RESIDENT_ID;
    case BG_CAT_CN_MOBILE:
    case BG_CAT_PHONE_NUMBER: return BG_HINT_PHONE;
    case BG_CAT_BANK_CARD: return BG_HINT_CARD;
    case BG_CAT_IMEI: return BG_HINT_IMEI;
    case BG_CAT_IMSI: return BG_HINT_IMSI;
    case BG_CAT_MAC_ADDRESS: return BG_HINT_MAC;
    case BG_CAT_ANDROID_ID: return BG_HINT_ANDROID;
    case BG_CAT_DEVICE_ID: return BG_HINT_DEVICE;
    case BG_CAT_IP_ADDRESS: return BG_HINT_IP;
    case BG_CAT_GPS_LOCATION:
    case BG_CAT_PRECISE_LOCATION:
    case BG_CAT_WHEREABOUTS: return BG_HINT_GEO;
    case BG_CAT_PASSPORT: return BG_HINT_PASSPORT;
    case BG_CAT_HK_ID: return BG_HINT_HK_ID;
    case BG_CAT_TW_ID: return BG_HINT_TW_ID;
    case BG_CAT_MO_ID: return BG_HINT_MO_ID;
    case BG_CAT_MAINLAND_TRAVEL_PERMIT: return BG_HINT_PERMIT;
    case BG_CAT_IDENTITY_DOCUMENT: /* not PASSPORT: "any letters + digits" would
                                      claim HK and Taiwan numbers */
        return BG_HINT_RESIDENT_ID | BG_HINT_HK_ID | BG_HINT_TW_ID | BG_HINT_MO_ID | BG_HINT_PERMIT;
    case BG_CAT_EMAIL: return BG_HINT_EMAIL;
    }
    return 0;
}

/* Open-addressing table over key_table, keyed by a hash that is computed
 * right to left, so that every suffix of a key is hashed in one pass. */
#define KEY_SLOTS 2048  /* power of two, under 30% full */
#define KEY_TERM_MAX 40 /* longest term in bytes, with margin */

typedef struct {
    uint32_t h;
    uint16_t idx; /* entry + 1; 0 = empty */
} key_slot_t;

static key_slot_t key_slots[KEY_SLOTS];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static inline uint32_t hstep(uint32_t h, unsigned char c)
{
    return (h ^ c) * 16777619u;
}
#define HSEED 2166136261u

static void key_table_init(void)
{
    for (size_t i = 0; i < sizeof key_table / sizeof key_table[0]; i++) {
        const char *t = key_table[i].term;
        size_t n = strlen(t);
        uint32_t h = HSEED;
        for (size_t k = n; k-- > 0;)
            h = hstep(h, (unsigned char)t[k]);
        size_t slot = h & (KEY_SLOTS - 1);
        while (key_slots[slot].idx != 0)
            slot = (slot + 1) & (KEY_SLOTS - 1);
        key_slots[slot].h = h;
        key_slots[slot].idx = (uint16_t)(i + 1);
    }
}

static const key_entry_t *key_lookup(uint32_t h, const char *s, size_t n, unsigned kinds)
{
    for (size_t slot = h & (KEY_SLOTS - 1); key_slots[slot].idx != 0;
         slot = (slot + 1) & (KEY_SLOTS - 1)) {
        if (key_slots[slot].h != h)
            continue;
        const key_entry_t *e = &key_table[key_slots[slot].idx - 1];
        if ((e->match & kinds) && strlen(e->term) == n && memcmp(e->term, s, n) == 0)
            return e;
    }
    return NULL;
}

#define KEY_MAX 256
#define KEY_CJK_MAX 96

typedef struct {
    char a[KEY_MAX + 1];     /* ASCII letters and digits, lower case, joined */
    uint8_t wb[KEY_MAX + 1]; /* wb[i]: a word starts at a[i] */
    size_t an;
    char u[KEY_MAX + 1]; /* every character but separators, ASCII lower case */
    size_t un;
    int cjk;           /* u has non-ASCII characters */
    size_t first_word; /* length of the first word of a */
    unsigned words;
} nkey_t;

/*
 * Split and fold a key: ASCII separators (anything not a letter or digit)
 * and non-ASCII characters end words; so do lower-to-upper case changes
 * ("contactPhone"), the last capital of an acronym before a lower-case
 * letter ("IDCard" = ID|Card) and letter/digit changes. Full-width ASCII
 * counts as ASCII.
 */
static void key_normalize(const char *key, size_t len, nkey_t *k)
{
    const unsigned char *p = (const unsigned char *)key;
    if (len > KEY_MAX) {
        p += len - KEY_MAX;
        len = KEY_MAX;
        while (len > 0 && (*p & 0xC0) == 0x80)
            p++, len--;
    }
    k->an = k->un = 0;
    k->cjk = 0;
    k->first_word = 0;
    k->words = 0;
    int brk = 1;       /* a word ends before the next character */
    unsigned prev = 0; /* previous ASCII character, 0 after a break */
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = bg_norm_utf8_decode(p + i, len - i, &cp);
        unsigned c = cp < 0x80 ? cp : (cp >= 0xFF01 && cp <= 0xFF5E) ? cp - 0xFF01 + 0x21 : 0;
        if (c == 0 && cp != UINT32_MAX) { /* non-ASCII: a word of its own for u */
            memcpy(k->u + k->un, p + i, l);
            k->un += l;
            k->cjk = 1;
            brk = 1, prev = 0;
            i += l;
            continue;
        }
        i += l;
        if (!is_an(c)) {
            brk = 1, prev = 0;
            continue;
        }
        unsigned next = i < len ? p[i] : 0;
        int upper = c - 'A' < 26u;
        if (!brk && prev) {
            int pu = prev - 'A' < 26u, pl = prev - 'a' < 26u, pd = is_d(prev);
            if (upper && (pl || pd))
                brk = 1;
            else if (upper && pu && next - 'a' < 26u)
                brk = 1;
            else if (is_d(c) != pd)
                brk = 1;
        }
        if (brk) {
            if (k->words == 1)
                k->first_word = k->an;
            k->words++;
        }
        k->wb[k->an] = (uint8_t)brk;
        k->a[k->an++] = (char)(c | (is_a(c) ? 0x20 : 0));
        k->u[k->un++] = (char)(c | (is_a(c) ? 0x20 : 0));
        brk = 0;
        prev = c;
    }
    if (k->words == 1)
        k->first_word = k->an;
    k->a[k->an] = 0;
    k->u[k->un] = 0;
}

/* The longest term that matches a suffix of A[0, N) under its rule. */
static const key_entry_t *match_ascii(const nkey_t *k, size_t n)
{
    const key_entry_t *best = NULL;
    uint32_t h = HSEED;
    for (size_t p = n; p-- > 0 && n - p <= KEY_TERM_MAX;) {
        h = hstep(h, (unsigned char)k->a[p]);
        const key_entry_t *e = key_lookup(h, k->a + p, n - p, K_EXACT | K_WORD | K_PART);
        if (e == NULL || ((e->match & K_EXACT) && p != 0) || ((e->match & K_WORD) && !k->wb[p]))
            continue;
        best = e;
    }
    return best;
}

/* The Chinese term that ends last in U (its last KEY_CJK_MAX bytes), the
 * longest of those. */
static const key_entry_t *match_cjk(const nkey_t *k)
{
    const char *u = k->u;
    size_t n = k->un, lo = n > KEY_CJK_MAX ? n - KEY_CJK_MAX : 0;
    for (size_t q = n; q > lo; q--) {
        if (q < n && ((unsigned char)u[q] & 0xC0) == 0x80)
            continue; /* a term ends before a character, not inside one */
        const key_entry_t *best = NULL;
        uint32_t h = HSEED;
        for (size_t p = q; p-- > lo && q - p <= KEY_TERM_MAX;) {
            h = hstep(h, (unsigned char)u[p]);
            if (((unsigned char)u[p] & 0xC0) == 0x80)
                continue;
            const key_entry_t *e = key_lookup(h, u + p, q - p, K_CJK);
            if (e != NULL)
                best = e;
        }
        if (best != NULL)
            return best;
    }
    return NULL;
}

/* A key that names a yes/no flag about the data, not the data. */
static int flag_key(const nkey_t *k)
{
    static const char *const words[] = {
        "is",       "has",      "have",    "can",      "should",  "enable",  "enabled", "disable",
        "disabled", "show",     "hide",    "allow",    "allowed", "need",    "needs",   "use",
        "support",  "supports", "require", "required", "with",    "without", NULL};
    if (k->words >= 2) {
        for (const char *const *w = words; *w; w++)
            if (strlen(*w) == k->first_word && memcmp(*w, k->a, k->first_word) == 0)
                return 1;
    }
    return k->un >= 6 && (memcmp(k->u, "是否", 6) == 0 || memcmp(k->u, "有无", 6) == 0);
}

void bg_detect_key_info(const char *key, size_t len, bg_detect_key_t *out)
{
    out->category = BG_CAT_NONE;
    out->confidence = 0;
    out->hints = 0;
    if (key == NULL || len == 0)
        return;
    pthread_once(&key_once, key_table_init);
    nkey_t k;
    key_normalize(key, len, &k);
    if (flag_key(&k))
        return;
    const key_entry_t *e = match_ascii(&k, k.an);
    if (e == NULL) { /* "imei2", "address_1" */
        size_t n = k.an;
        while (n > 0 && is_d((unsigned char)k.a[n - 1]))
            n--;
        if (n > 0 && n < k.an)
            e = match_ascii(&k, n);
    }
    if (k.cjk) {
        /* the key's last character decides which reading comes first */
        int ascii_last =
            k.un > 0 && (unsigned char)k.u[k.un - 1] < 0x80 && !is_d((unsigned char)k.u[k.un - 1]);
        if (!(ascii_last && e != NULL)) {
            const key_entry_t *c = match_cjk(&k);
            if (c != NULL)
                e = c;
        }
    }
    if (e == NULL)
        return;
    out->category = (bg_detect_cat_t)e->cat;
    out->confidence = e->cat != BG_CAT_NONE ? (bg_detect_conf_t)e->conf : 0;
    out->hints = e->hints | cat_hints(e->cat);
}

bg_detect_cat_t bg_detect_key_category(const char *key, size_t len)
{
    bg_detect_key_t k;
    bg_detect_key_info(key, len, &k);
    return k.confidence >= BG_CONF_MEDIUM ? k.category : BG_CAT_NONE;
}
