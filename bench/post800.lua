-- wrk script: 800-byte JSON POSTs, the shape of a typical egress API call.
local body = '{"order_id":"ORD-2026-000123456","currency":"CNY","amount":1288.50,' ..
  '"items":[{"sku":"SKU-0001","qty":2,"price":199.00},{"sku":"SKU-0002","qty":1,"price":890.50}],' ..
  '"shipping":{"method":"express","carrier":"partner-logistics","service_level":"2day"},' ..
  '"customer":{"name":"Zhang Wei","phone":"13812345678","email":"zhang.wei@example.cn",' ..
  '"address":"Room 1201, 88 Century Avenue, Pudong, Shanghai"},' ..
  '"device":{"os":"android","app_version":"5.12.0","locale":"zh-CN"},' ..
  '"meta":{"channel":"app","campaign":"none","trace":"7f3a9c1e2b4d4e0f9a8b7c6d5e4f3a2b"}'
while #body < 799 do body = body .. " " end
body = body .. "}"
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = "api.partner.example"
